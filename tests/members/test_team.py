import re

from django.core import mail
from django.test import Client
from django_scopes import scopes_disabled

from members.models import Membership
from tests.conftest import client_for, user_make


def test_an_owner_invites_staff_who_joins_with_a_new_account(owner_client, business):
    response = owner_client.post("/settings/team/", {"email": "New.Barista@Example.com", "role": "staff"})

    assert response.status_code == 200
    assert len(mail.outbox) == 1
    link = re.search(r"https?://\S+/invite/\S+/", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[1]
    newcomer = Client()
    assert "Join Kopi Corner" in newcomer.get(path).content.decode()

    newcomer.post(path, {"first_name": "Ana", "password": "a-long-Passphrase-9"})

    with scopes_disabled():
        membership = Membership.objects.get(user__username="new.barista@example.com")
    assert (membership.business, membership.role) == (business, "staff")
    assert newcomer.get("/").url == "/stamp/"
    assert newcomer.get(path).status_code == 404  # single use


def test_an_existing_user_accepts_after_signing_in(owner_client, business, other_owner):
    owner_client.post("/settings/team/", {"email": other_owner.username, "role": "manager"})
    path = re.search(r"/invite/\S+/", mail.outbox[0].body).group(0)
    client = client_for(other_owner)

    client.post(path)

    with scopes_disabled():
        assert Membership.objects.get(user=other_owner, business=business).role == "manager"


def test_the_last_owner_cannot_be_demoted(owner_client, owner, business):
    with scopes_disabled():
        membership = Membership.objects.get(user=owner)

    response = owner_client.post(f"/settings/team/{membership.pk}/", {"role": "staff"}, follow=True)

    assert "at least one owner" in response.content.decode()
    membership.refresh_from_db()
    assert membership.role == "owner"


def test_an_owner_changes_a_role_but_not_in_another_business(owner_client, staff, other_business):
    with scopes_disabled():
        membership = Membership.objects.get(user=staff)
        outsider = Membership.objects.get(user=user_make("staff", other_business))

    owner_client.post(f"/settings/team/{membership.pk}/", {"role": "manager"})

    membership.refresh_from_db()
    assert membership.role == "manager"
    assert owner_client.post(f"/settings/team/{outsider.pk}/", {"role": "owner"}).status_code == 404
    outsider.refresh_from_db()
    assert outsider.role == "staff"
