from django.contrib.admin.apps import AdminConfig


class WinbackAdminConfig(AdminConfig):
    default_site = "winback.admin_site.WinbackAdminSite"
