from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Users sign in with their email address; usernames are stored lower-cased emails."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username:
            username = username.strip().lower()
        return super().authenticate(request, username=username, password=password, **kwargs)
