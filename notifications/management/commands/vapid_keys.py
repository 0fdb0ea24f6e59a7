import base64

from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand
from py_vapid import Vapid01


class Command(BaseCommand):
    help = "Create a VAPID key pair for Web Push; prints the two environment lines to set."

    def handle(self, *args, **options):
        vapid = Vapid01()
        vapid.generate_keys()
        raw = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
        public = vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        self.stdout.write(f"VAPID_PRIVATE_KEY={base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}")
        self.stdout.write(f"VAPID_PUBLIC_KEY={base64.urlsafe_b64encode(public).rstrip(b'=').decode()}")
