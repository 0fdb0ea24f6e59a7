from django.conf import settings
from django.core.management.base import BaseCommand

from members.demo import demo_seed


class Command(BaseCommand):
    help = "Create the demo businesses, owner and staff logins and members (idempotent)."

    def handle(self, *args, **options):
        password = settings.DEMO_PASSWORD
        for result in demo_seed(password=password):
            if result.created:
                self.stdout.write(f"Created {result.business.name}: {result.members} members, {result.visits} visits.")
            else:
                self.stdout.write(f"{result.business.name} already exists; nothing changed.")
        self.stdout.write(f"Logins: owner@demo.example and staff@demo.example, password {password}")
