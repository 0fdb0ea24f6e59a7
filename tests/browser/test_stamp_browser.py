import pytest
from django_scopes import scope
from playwright.sync_api import expect

from members.models import Member
from tests.browser.conftest import sign_in
from tests.conftest import member_make, visit_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_finds_a_member_and_stamps_their_card(page, live_server, staff, business, shot):
    member = member_make(business, first_name="Wei", last_name="Lin", phone="+60123456789")
    for days in (40, 30, 20):
        visit_make(member, days_ago=days)
    sign_in(page, live_server, staff.username)
    expect(page).to_have_url(f"{live_server.url}/stamp/")

    page.fill("input[name=q]", "Wei")
    page.wait_for_selector(".result")
    shot("stamp-1-search")
    page.click(".result")
    expect(page.locator("#stamps-balance")).to_have_text("3")
    page.click("#add-stamp")

    expect(page.locator("#stamps-balance")).to_have_text("4")
    expect(page.locator(".msg-success")).to_contain_text("+1 stamp for Wei Lin")
    shot("stamp-2-stamped")
    with scope(business=business.pk):
        m = Member.objects.get(pk=member.pk)
    assert m.stamps_balance == 4 and m.purchase_count == 4


def test_a_full_card_is_obvious_on_a_phone(page, live_server, staff, business, shot):
    member = member_make(business, first_name="Full", last_name="Card")
    for days in range(9):
        visit_make(member, days_ago=days + 1)
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, live_server, staff.username)
    page.goto(f"{live_server.url}/stamp/{member.pk}/")

    page.click("#add-stamp")

    expect(page.locator(".full-banner")).to_be_visible()
    expect(page.locator("#redeem")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows a phone
    shot("stamp-3-full-card-phone")
    page.click("#redeem")
    expect(page.locator("#stamps-balance")).to_have_text("0")
