import io
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django_scopes import scope

from members.importing import ImportFailed, members_import
from members.models import ConsentEvent, Member, Visit
from notifications import erasure
from tests.conftest import member_make

MEMBERS = """card_code,first_name,last_name,phone,email,birthday,joined_on,consent_sms,consent_email,stamps,points
K001,Aisha,Tan,012-345 6789,aisha@example.com,1990-04-02,2024-01-10,yes,no,2,
K002,Ravi,Kumar,+60198765432,,,2024-02-01,no,yes,,50
"""
VISITS = """card_code,occurred_at,kind,stamps,points,amount
K001,2025-03-01 10:30,purchase,1,12,12.50
K001,2025-06-01,purchase,1,,8
K001,2025-07-01 09:00,balance_check,,,
k002,2025-05-05T08:00:00+00:00,,1,5,5.00
"""


def run_import(business, members=MEMBERS, visits=VISITS):
    with scope(business=business.pk):
        return members_import(business=business, members_csv=members, visits_csv=visits)


def test_a_good_file_imports_members_visits_and_keeps_the_ledger_right(business):
    report = run_import(business)

    assert (report.members, report.visits) == (2, 4)
    with scope(business=business.pk):
        aisha = Member.objects.get(card_code="K001")
        ravi = Member.objects.get(card_code="K002")
        assert aisha.phone == "+60123456789"
        assert (aisha.consent_sms, aisha.consent_email) == (True, False)
        assert aisha.stamps_balance == 2 + 2  # opening balance plus two purchases
        assert aisha.points_balance == 12
        assert aisha.purchase_count == 2
        assert aisha.total_spent == Decimal("20.50")
        kl = ZoneInfo("Asia/Kuala_Lumpur")
        assert aisha.last_purchase_at == datetime(2025, 6, 1, 12, 0, tzinfo=kl)  # a date alone is noon local
        assert aisha.last_visit_at == datetime(2025, 7, 1, 9, 0, tzinfo=kl)
        assert ravi.points_balance == 55
        assert ravi.last_purchase_at == datetime(2025, 5, 5, 8, 0, tzinfo=ZoneInfo("UTC"))
        assert ConsentEvent.objects.filter(member=aisha, channel="sms", granted=True, source="import").count() == 1
        assert Visit.objects.filter(member=aisha, kind="adjustment", stamps_delta=2).count() == 1


def test_a_file_with_one_bad_row_imports_nothing_and_names_the_row(business):
    bad = MEMBERS + "K003,Mei,Lim,not-a-phone,,,,,,,\n"

    with pytest.raises(ImportFailed) as failed:
        run_import(business, members=bad)

    errors = failed.value.report.errors
    assert [(e.file, e.line) for e in errors] == [("members file", 4)]
    assert "not-a-phone" in errors[0].message
    with scope(business=business.pk):
        assert Member.objects.count() == 0
        assert Visit.objects.count() == 0


def test_every_bad_row_is_reported_with_its_reason(business):
    member_make(business, card_code="TAKEN1")
    members = """card_code,first_name,email,birthday,consent_sms
A1,Ok,,,
A1,Dup,,,
TAKEN1,Clash,,,
B2,Bad mail,nope@,,
B3,Bad date,,31-12-1990,
B4,Bad consent,,,maybe
"""
    visits = """card_code,occurred_at,kind,amount
A1,2025-01-01,purchase,abc
ZZZ,2025-01-01,purchase,1
A1,2999-01-01,purchase,1
A1,2025-01-01,dance,
"""
    with pytest.raises(ImportFailed) as failed:
        run_import(business, members=members, visits=visits)

    got = [(e.file, e.line, e.message) for e in failed.value.report.errors]
    assert [(f, line) for f, line, _ in got] == [
        ("members file", 3),
        ("members file", 4),
        ("members file", 5),
        ("members file", 6),
        ("members file", 7),
        ("visits file", 2),
        ("visits file", 3),
        ("visits file", 4),
        ("visits file", 5),
    ]
    messages = " | ".join(m for _, _, m in got)
    for fragment in [
        "also on line 2",
        "already belongs",
        "nope@",
        "31-12-1990",
        "maybe",
        "abc",
        "ZZZ",
        "future",
        "dance",
    ]:
        assert fragment in messages
    with scope(business=business.pk):
        assert Member.objects.count() == 1


def test_a_header_with_unknown_columns_is_refused(business):
    with pytest.raises(ImportFailed, match="unknown column"):
        run_import(business, members="first_name,shoe_size\nA,42\n", visits="")


def test_visits_can_be_imported_for_existing_members(business, member):
    report = run_import(
        business, members="first_name\n", visits=f"card_code,occurred_at\n{member.card_code},2025-01-02\n"
    )

    assert report.visits == 1
    with scope(business=business.pk):
        assert Member.objects.get(pk=member.pk).purchase_count == 1


def test_an_erased_members_phone_reimported_gets_no_consent(business, member):
    with scope(business=business.pk):
        erasure.member_erase(member=member)

    report = run_import(business, members="first_name,phone,consent_sms\nWei,+60123456789,yes\n", visits="")

    assert report.suppressed == 1
    with scope(business=business.pk):
        assert Member.objects.get(first_name="Wei").consent_sms is False


def test_the_command_imports_and_reports_bad_rows(business, tmp_path):
    good = tmp_path / "members.csv"
    good.write_text(MEMBERS, encoding="utf-8")
    visits = tmp_path / "visits.csv"
    visits.write_text(VISITS, encoding="utf-8")
    out = io.StringIO()

    call_command("import_members", str(good), "--business", "kopi", "--visits", str(visits), stdout=out)

    assert "Imported 2 members and 4 visits" in out.getvalue()
    bad = tmp_path / "bad.csv"
    bad.write_text("first_name,email\nX,bad@\n", encoding="utf-8")
    err = io.StringIO()
    with pytest.raises(CommandError, match="Nothing imported: 1 bad row"):
        call_command("import_members", str(bad), "--business", "kopi", stderr=err)
    assert "members file, line 2" in err.getvalue()


def test_a_number_too_big_for_its_column_is_a_line_numbered_error(business):
    members = "card_code,first_name,stamps\nA1,Ann,1\nA2,Bob,99999999999999999999\n"

    with pytest.raises(ImportFailed) as failed:
        run_import(business, members=members, visits="")

    [error] = failed.value.report.errors
    assert (error.line, error.field) == (3, "stamps")
    assert "99999999999999999999 is too large" in error.message
    with scope(business=business.pk):
        assert Member.objects.count() == 0


def test_a_bad_card_code_in_the_visits_file_is_a_line_numbered_error(business, member):
    long_code = "C" * 40
    visits = f"card_code,occurred_at\n{member.card_code},2025-01-02\n{long_code},2025-01-03\n"

    with pytest.raises(ImportFailed) as failed:
        run_import(business, members="first_name\n", visits=visits)

    [error] = failed.value.report.errors
    assert (error.line, error.field) == (3, "card_code")
    with scope(business=business.pk):
        assert Visit.objects.filter(member=member).count() == 0


def test_visits_that_add_up_past_the_balance_column_are_a_line_numbered_error(business):
    visits = "card_code,occurred_at,points\nK001,2025-01-01,2000000000\nK001,2025-01-02,2000000000\n"

    with pytest.raises(ImportFailed) as failed:
        run_import(business, visits=visits)

    [error] = failed.value.report.errors
    assert (error.file, error.line, error.field) == ("visits file", 3, "points")


def test_an_unterminated_quote_is_a_line_numbered_error_not_a_name_swallowing_the_next_rows(business):
    members = 'first_name,last_name\nAnn,Tan\n"Bob,Lee\nCid,Ong\nDee,Woo\n'

    with pytest.raises(ImportFailed) as failed:
        run_import(business, members=members, visits="")

    [error] = failed.value.report.errors
    assert error.line == 3
    assert "quote" in error.message
    with scope(business=business.pk):
        assert Member.objects.count() == 0


def test_a_quote_closed_rows_later_is_a_line_numbered_error(business):
    members = 'first_name,last_name\nAnn,Tan\n"Bob,Lee\nCid,""\nDee",Woo\n'

    with pytest.raises(ImportFailed) as failed:
        run_import(business, members=members, visits="")

    [error] = failed.value.report.errors
    assert (error.line, error.field) == (3, "first_name")
    assert "line break" in error.message


def test_an_over_long_first_name_is_an_error_naming_the_field_and_the_limit(business):
    members = f"first_name,last_name\n{'A' * 81},Tan\n"

    with pytest.raises(ImportFailed) as failed:
        run_import(business, members=members, visits="")

    [error] = failed.value.report.errors
    assert (error.line, error.field) == (2, "first_name")
    assert "81 characters" in error.message and "at most 80" in error.message


def test_formulas_in_cells_are_imported_as_plain_text(business):
    members = (
        "card_code,first_name,last_name\n"
        'F1,"=HYPERLINK(""http://evil.example"",""x"")",@SUM(A1)\n'
        "F2,+cmd|' /C calc'!A0,-2+3\n"
    )

    report = run_import(business, members=members, visits="")

    assert report.members == 2
    with scope(business=business.pk):
        assert Member.objects.values_list("first_name", "last_name").order_by("card_code")[::1] == [
            ('=HYPERLINK("http://evil.example","x")', "@SUM(A1)"),
            ("+cmd|' /C calc'!A0", "-2+3"),
        ]


def test_a_formula_in_a_number_column_is_not_a_number(business):
    with pytest.raises(ImportFailed, match="“=1\\+1” is not a whole number"):
        run_import(business, members="first_name,stamps\nAnn,=1+1\n", visits="")


def test_suppressions_are_read_in_one_query_per_file(business, member, django_assert_max_num_queries):
    with scope(business=business.pk):
        erasure.member_erase(member=member)
    rows = "".join(f"P{i},Wei,+6012555{i:04d},yes\n" for i in range(300))

    # Per row it would be 300 queries; the whole import is a fixed handful.
    with django_assert_max_num_queries(20):
        report = run_import(business, members="card_code,first_name,phone,consent_sms\n" + rows, visits="")

    assert report.members == 300


def _import_queries(business, rows: int, first: int) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    lines = [f"M{first + i:05d},R{i},+60123{first + i:06d},r{first + i}@example.com,yes,yes" for i in range(rows)]
    members = "card_code,first_name,phone,email,consent_sms,consent_email\n" + "\n".join(lines) + "\n"
    with CaptureQueriesContext(connection) as ctx:
        report = run_import(business, members=members, visits="")
    assert (report.members, report.suppressed) == (rows, 1)
    return len(ctx.captured_queries)


def test_the_import_checks_the_suppression_list_once_per_file_not_per_row(business):
    # given an erased member's phone and email, each of which is in both files
    for value in ("+60123000001", "r100@example.com"):
        erased = member_make(business, phone=value if value.startswith("+") else "",
                             email="" if value.startswith("+") else value)  # fmt: skip
        with scope(business=business.pk):
            erasure.member_erase(member=erased)

    few = _import_queries(business, 3, first=0)  # row 2 has the erased phone
    many = _import_queries(business, 40, first=100)  # row 1 has the erased email

    assert few == many
    with scope(business=business.pk):
        assert not Member.objects.filter(phone="+60123000001", consent_sms=True).exists()
        assert Member.objects.get(email="r100@example.com").consent_email is False
        assert Member.objects.get(email="r101@example.com").consent_email is True
