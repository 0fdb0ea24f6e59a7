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


@pytest.mark.parametrize(
    "size", [{"width": 1280, "height": 800}, {"width": 390, "height": 844}], ids=["desktop", "phone"]
)
def test_staff_type_a_reward_code_and_redeem_it_at_the_counter(page, live_server, staff, business, shot, size):
    from django.utils import timezone

    from members.models import WalletReward
    from notifications import inbox
    from tests.api.conftest import send_make

    member = member_make(business, first_name="Wei", last_name="Lin", phone="+60123456789")
    with scope(business=business.pk):
        coffee = inbox.reward_claim(send=send_make(member, reward_kind="free_item"), at=timezone.now())
        discount = inbox.reward_claim(send=send_make(member, reward_kind="discount"), at=timezone.now())
    name = "desktop" if size["width"] > 760 else "phone"
    page.set_viewport_size(size)
    sign_in(page, live_server, staff.username)
    expect(page).to_have_url(f"{live_server.url}/stamp/")

    page.fill("#redeem-code", f"{coffee.code[:5].lower()}-{coffee.code[5:].lower()}")
    page.screenshot(path=f"/tmp/counter-redeem-1-typed-{name}.png", full_page=True)
    page.click("#redeem-code-submit")

    expect(page).to_have_url(f"{live_server.url}/stamp/{member.pk}/")
    expect(page.locator(".msg-success")).to_have_text("Redeemed a free cup of coffee for Wei Lin.")
    expect(page.locator("#rewards")).to_contain_text("20% off")
    expect(page.locator("#rewards")).not_to_contain_text("a free cup of coffee")
    assert page.evaluate("document.documentElement.scrollWidth") <= size["width"]
    page.screenshot(path=f"/tmp/counter-redeem-2-redeemed-{name}.png", full_page=True)
    shot(f"stamp-4-reward-redeemed-{name}")

    page.goto(f"{live_server.url}/stamp/")
    page.fill("#redeem-code", coffee.code)
    page.click("#redeem-code-submit")
    expect(page.locator("#redeem-code-error")).to_have_text("This reward was already redeemed.")
    page.screenshot(path=f"/tmp/counter-redeem-3-again-{name}.png", full_page=True)

    page.goto(f"{live_server.url}/stamp/{member.pk}/")
    page.click(f"#rewards button[data-reward='{discount.pk}']")
    expect(page.locator(".msg-success")).to_have_text("Redeemed 20% off for Wei Lin.")
    expect(page.locator("#rewards")).to_have_count(0)  # nothing left: the card shows no rewards box
    with scope(business=business.pk):
        assert set(WalletReward.objects.filter(member=member).values_list("status", flat=True)) == {"redeemed"}
