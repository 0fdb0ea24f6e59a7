from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects anymail's tracking signal to its one receiver (the only signal in the project).
        from . import email_tracking  # noqa: F401
