import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Sum
from django.utils import timezone
from django_scopes import scope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from members import services
from members.models import NOT_IN_PERSON, Member, Visit, VisitKind
from notifications import erasure
from tests.conftest import member_make, visit_make

NON_PURCHASE = [k for k in VisitKind.values if k != VisitKind.PURCHASE]


def reload(member):
    with scope(business=member.business_id):
        return Member.objects.get(pk=member.pk)


def test_a_purchase_moves_last_purchase_at_and_balances(member):
    at = timezone.now() - timedelta(hours=2)

    visit_make(member, at=at, stamps=1, points=12, amount=Decimal("12.50"))

    m = reload(member)
    assert (m.last_purchase_at, m.purchase_count, m.stamps_balance, m.points_balance) == (at, 1, 1, 12)
    assert m.total_spent == Decimal("12.50")
    assert m.last_visit_at == at


@pytest.mark.parametrize("kind", NON_PURCHASE)
def test_only_purchase_visits_move_last_purchase_at(member, kind):
    purchase_at = timezone.now() - timedelta(days=20)
    visit_make(member, at=purchase_at)

    visit_make(member, kind=kind, days_ago=1, stamps=0)

    m = reload(member)
    assert m.last_purchase_at == purchase_at
    assert m.purchase_count == 1
    in_person = kind not in NOT_IN_PERSON
    assert m.visit_count == (2 if in_person else 1)
    assert (m.last_visit_at > purchase_at) is in_person


def test_a_backdated_purchase_does_not_move_last_purchase_back(member):
    recent = timezone.now() - timedelta(days=3)
    visit_make(member, at=recent)

    visit_make(member, days_ago=40, amount=Decimal("7.00"))

    m = reload(member)
    assert m.last_purchase_at == recent
    assert m.purchase_count == 2
    assert m.stamps_balance == 2
    assert m.total_spent == Decimal("17.00")


def test_a_backdated_purchase_newer_than_the_last_moves_it_forward(member):
    visit_make(member, days_ago=40)
    newer = timezone.now() - timedelta(days=5)

    visit_make(member, at=newer)

    assert reload(member).last_purchase_at == newer


def test_a_replayed_idempotency_key_returns_the_same_visit_and_changes_nothing(member):
    first = visit_make(member, idempotency_key="pos-42", stamps=1)
    before = reload(member)

    again = visit_make(member, idempotency_key="pos-42", stamps=1)

    after = reload(member)
    assert again.pk == first.pk
    assert (first.replayed, again.replayed) == (False, True)
    assert (after.stamps_balance, after.purchase_count, after.visit_count) == (
        before.stamps_balance,
        before.purchase_count,
        before.visit_count,
    )
    with scope(business=member.business_id):
        assert Visit.objects.filter(member=member).count() == 1


def test_an_idempotency_key_of_another_member_is_refused(business, member):
    other = member_make(business)
    visit_make(member, idempotency_key="pos-7")

    with pytest.raises(ValidationError, match="another member"):
        visit_make(other, idempotency_key="pos-7")

    assert reload(other).stamps_balance == 0


def test_the_same_key_in_two_businesses_is_two_visits(member, other_member):
    a = visit_make(member, idempotency_key="shared")
    b = visit_make(other_member, idempotency_key="shared")

    assert a.pk != b.pk and not b.replayed


def test_a_never_purchased_member_has_no_last_purchase(member):
    visit_make(member, kind="balance_check", stamps=0)

    m = reload(member)
    assert m.last_purchase_at is None
    assert m.purchase_count == 0


def test_a_redemption_cannot_take_more_stamps_than_the_card_has(member):
    visit_make(member, stamps=3)

    with pytest.raises(ValidationError, match="only 3 stamps"):
        visit_make(member, kind="redemption", stamps=-10)

    assert reload(member).stamps_balance == 3


def test_a_visit_in_the_future_is_refused(member):
    with pytest.raises(ValidationError, match="future"):
        visit_make(member, at=timezone.now() + timedelta(hours=1))


def test_an_erased_member_takes_no_visit(member):
    with scope(business=member.business_id):
        erasure.member_erase(member=member)
    with pytest.raises(ValidationError, match="erased"):
        visit_make(member)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_record_one_visit(business):
    member = member_make(business)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def stamp():
        try:
            barrier.wait()
            results.append(visit_make(member, idempotency_key="retry-1").pk)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=stamp) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert len(set(results)) == 1
    m = reload(member)
    assert (m.stamps_balance, m.purchase_count) == (1, 1)


visit_strategy = st.lists(
    st.tuples(
        st.sampled_from(VisitKind.values),
        st.integers(min_value=0, max_value=700),  # hours ago
        st.integers(min_value=0, max_value=3),
        st.integers(min_value=0, max_value=50),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(visits=visit_strategy)
def test_denormalised_fields_always_equal_the_ledger(business, visits):
    member = member_make(business)
    now = timezone.now()
    for kind, hours, stamps, points in visits:
        visit_make(member, kind=kind, at=now - timedelta(hours=hours), stamps=stamps, points=points)

    m = reload(member)
    with scope(business=business.pk):
        ledger = Visit.objects.filter(member=m)
        purchases = ledger.filter(kind=VisitKind.PURCHASE)
        assert m.stamps_balance == ledger.aggregate(s=Sum("stamps_delta"))["s"]
        assert m.points_balance == ledger.aggregate(s=Sum("points_delta"))["s"]
        assert m.purchase_count == purchases.count()
        assert m.last_purchase_at == max((v.occurred_at for v in purchases), default=None)
        fields = ("stamps_balance", "points_balance", "purchase_count", "last_purchase_at", "total_spent",
                  "visit_count", "last_visit_at")  # fmt: skip
        before = [getattr(m, f) for f in fields]
        services.members_recompute_totals(business=business, member_ids=[m.pk])
        m.refresh_from_db()
        assert [getattr(m, f) for f in fields] == before
