"""The Django admin, open to every member of a business's team and scoped to its business.

The platform superuser sees every business (the tenancy middleware disables scopes for it on
``/admin/``); owners, managers and staff see only their current business's rows, because the
admin's querysets come from the scoped managers.
"""

from django.contrib import admin
from django.http import Http404


class WinbackAdminSite(admin.AdminSite):
    site_header = "Winback admin"
    site_title = "Winback admin"
    index_title = "Your business"

    def has_permission(self, request):
        user = request.user
        return user.is_active and (user.is_superuser or getattr(request, "membership", None) is not None)


def role_of(request) -> str | None:
    if request.user.is_superuser:
        return "superuser"
    membership = getattr(request, "membership", None)
    return membership.role if membership else None


class BusinessScopedAdmin(admin.ModelAdmin):
    """Admin for tenant-owned models: another business's object answers 404, not a redirect."""

    # Which team roles may do what; the platform superuser may do everything but delete ledgers.
    view_roles = ("owner", "manager", "staff")
    add_roles = ("owner", "manager")
    change_roles = ("owner", "manager")
    delete_roles: tuple[str, ...] = ()

    def _allowed(self, request, roles) -> bool:
        role = role_of(request)
        return role == "superuser" or role in roles

    def has_module_permission(self, request):
        return self._allowed(request, self.view_roles)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, self.view_roles + self.change_roles)

    def has_add_permission(self, request):
        return self._allowed(request, self.add_roles)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, self.change_roles)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and self.delete_roles == ("superuser",)

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("No such object in this business.")
        return obj

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        if not request.user.is_superuser:
            exclude.append("business")
        return exclude

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if request.user.is_superuser:
            filters.insert(0, "business")
        return filters
