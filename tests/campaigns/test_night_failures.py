"""A failing business is isolated (SPEC §5): the others are evaluated, the failure is recorded and
shown to the platform operator, and the business is retried with backoff until it succeeds."""

from datetime import date, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from campaigns.models import Campaign, EvaluationRun
from tests.campaigns.test_tick_catch_up import tick
from tests.conftest import business_make, campaign_make, client_for, user_make

KL = ZoneInfo("Asia/Kuala_Lumpur")
T0 = datetime(2026, 5, 12, 0, 1, tzinfo=KL)


def broken_campaign(business) -> Campaign:
    """An active campaign whose reward lost its expiry (data written before the rule existed):
    the night raises KeyError on it, every time, until the data is mended."""
    campaign = campaign_make(business, channels=["sms"])
    with scope(business=business.pk):
        Campaign.objects.filter(pk=campaign.pk).update(reward={"kind": "free_item", "item": "coffee"})
    return campaign


def mend(campaign) -> None:
    with scope(business=campaign.business_id):
        Campaign.objects.filter(pk=campaign.pk).update(
            reward={"kind": "free_item", "item": "coffee", "expiry_days": 14}
        )


def run_dates() -> dict[int, list[date]]:
    with scopes_disabled():
        rows = EvaluationRun.objects.order_by("local_date").values_list("business_id", "local_date")
    out: dict[int, list[date]] = {}
    for business_id, day in rows:
        out.setdefault(business_id, []).append(day)
    return out


def failure_of(business):
    from campaigns.models import EvaluationFailure

    with scopes_disabled():
        return EvaluationFailure.objects.filter(business=business).first()


def test_run_winback_evaluates_every_business_when_one_fails_reports_it_and_exits_non_zero(db):
    with time_machine.travel(T0, tick=False):
        first, bad, last = (
            business_make(slug=slug, timezone="Asia/Kuala_Lumpur") for slug in ("a-cafe", "b-bar", "c-deli")
        )
        broken_campaign(bad)
        campaign_make(last, channels=["sms"])
        out, err = StringIO(), StringIO()

        with pytest.raises(CommandError, match="1 of 3 businesses failed"):
            call_command("run_winback", stdout=out, stderr=err)

    assert run_dates() == {first.pk: [T0.date()], last.pk: [T0.date()]}
    assert "a-cafe 2026-05-12: 0 campaigns" in out.getvalue()
    assert "c-deli 2026-05-12: 1 campaign" in out.getvalue()
    assert "b-bar 2026-05-12 failed: KeyError: 'expiry_days'" in err.getvalue()
    failure = failure_of(bad)
    assert (failure.local_date, failure.failures, failure.error) == (T0.date(), 1, "KeyError: 'expiry_days'")


def test_run_winback_exits_non_zero_from_the_shell_too(db):
    with time_machine.travel(T0, tick=False):
        bad = business_make(timezone="Asia/Kuala_Lumpur")
        broken_campaign(bad)
        with pytest.raises(SystemExit) as exit_info:
            from django.core.management import ManagementUtility

            ManagementUtility(["manage.py", "run_winback"]).execute()

    assert exit_info.value.code == 1


def test_a_business_failing_three_times_is_retried_with_backoff_and_cleared_by_a_success(db):
    with time_machine.travel(T0 - timedelta(minutes=1), tick=False) as clock:  # both created on D
        good, bad = business_make(timezone="Asia/Kuala_Lumpur"), business_make(timezone="Asia/Kuala_Lumpur")
        campaign = broken_campaign(bad)
        attempts = []
        for minutes in range(0, 60, 5):  # the beat ticks every five minutes
            clock.move_to(T0 + timedelta(minutes=minutes))
            before = failure_of(bad)
            tick()
            after = failure_of(bad)
            if after and (before is None or after.failures != before.failures):
                attempts.append((minutes, after.failures, after.retry_at - after.failed_at))

        # Tried at once, then after 5, 10 and 20 minutes: 0, 5, 15, 35.
        assert attempts == [
            (0, 1, timedelta(minutes=5)),
            (5, 2, timedelta(minutes=10)),
            (15, 3, timedelta(minutes=20)),
            (35, 4, timedelta(minutes=40)),
        ]
        failure = failure_of(bad)
        assert failure.first_failed_at == T0
        assert failure.local_date == T0.date()
        assert failure.error == "KeyError: 'expiry_days'"
        assert run_dates() == {good.pk: [T0.date()]}

        mend(campaign)
        clock.move_to(T0 + timedelta(minutes=70))
        tick()
        assert failure_of(bad).failures == 4  # mended, but its next retry is due at 75 minutes
        clock.move_to(T0 + timedelta(minutes=75))
        tick()

    assert failure_of(bad) is None
    assert run_dates()[bad.pk] == [T0.date()]


def test_a_failing_business_stops_its_catch_up_at_the_failed_date_and_the_others_carry_on(db):
    with time_machine.travel(T0 - timedelta(days=10), tick=False) as clock:
        good, bad = business_make(timezone="Asia/Kuala_Lumpur"), business_make(timezone="Asia/Kuala_Lumpur")
        clock.move_to(T0 - timedelta(days=2))
        tick()
        broken_campaign(bad)
        clock.move_to(T0)
        tick()

    d = T0.date()
    assert run_dates()[good.pk][-2:] == [d - timedelta(days=1), d]
    assert run_dates()[bad.pk][-1] == d - timedelta(days=2)  # neither D-1 nor D after D-1 failed
    assert failure_of(bad).local_date == d - timedelta(days=1)


def test_the_platform_admin_lists_the_failing_businesses_with_their_error(db):
    with time_machine.travel(T0, tick=False):
        bad = business_make(name="Broken Bakery", timezone="Asia/Kuala_Lumpur")
        broken_campaign(bad)
        business_make(name="Fine Florist", timezone="Asia/Kuala_Lumpur")
        tick()
    root = user_make(None, None, "root@winback.example")
    root.is_superuser = root.is_staff = True
    root.save()

    page = client_for(root).get("/admin/campaigns/evaluationfailure/")

    body = page.content.decode()
    start = body.index('id="result_list"')
    rows = body[start : body.index("</table>", start)]
    assert page.status_code == 200
    assert "Broken Bakery" in rows and "KeyError: &#x27;expiry_days&#x27;" in rows
    assert "Fine Florist" not in rows
    detail = client_for(root).get(f"/admin/campaigns/evaluationfailure/{failure_of(bad).pk}/change/")
    assert detail.status_code == 200

    # Deleting the record is "retry now": the next tick (still inside the backoff) evaluates it.
    url = f"/admin/campaigns/evaluationfailure/{failure_of(bad).pk}/delete/"
    assert client_for(root).post(url, {"post": "yes"}).status_code == 302
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        tick()
    assert failure_of(bad).failures == 1  # tried again at once (and failed again: still broken)
    assert failure_of(bad).failed_at == T0 + timedelta(minutes=1)


def test_the_failure_records_are_the_platform_operators_not_the_owners(db):
    with time_machine.travel(T0, tick=False):
        bad = business_make(timezone="Asia/Kuala_Lumpur")
        broken_campaign(bad)
        tick()
    owner = user_make("owner", bad)

    assert client_for(owner).get("/admin/campaigns/evaluationfailure/").status_code == 403
    assert client_for(owner).get(f"/admin/campaigns/evaluationfailure/{failure_of(bad).pk}/change/").status_code == 403
    delete = client_for(owner).post(f"/admin/campaigns/evaluationfailure/{failure_of(bad).pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert failure_of(bad) is not None


def test_a_night_that_fails_records_the_failure_after_rolling_the_night_back(db):
    from campaigns import engine

    with time_machine.travel(T0, tick=False):
        bad = business_make(timezone="Asia/Kuala_Lumpur")
        broken_campaign(bad)
        outcomes = engine.nights_evaluate(pairs=[(bad.pk, T0.date())], now_fn=timezone.now)

    assert [(o.business_id, o.local_date, o.error) for o in outcomes] == [
        (bad.pk, T0.date(), "KeyError: 'expiry_days'")
    ]
    assert run_dates() == {}
