import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand
from py_vapid import Vapid01


class Command(BaseCommand):
    help = (
        "Create a VAPID key pair for Web Push; prints the two environment lines to set, or with --write "
        "FILE writes them there once (an existing file is kept: subscriptions are bound to its key)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--write", metavar="FILE", help="write the lines to FILE (mode 600) unless it exists")

    def handle(self, *args, **options):
        target = Path(options["write"]) if options.get("write") else None
        if target is not None and target.exists():
            self.stdout.write(f"{target} exists; its keys are kept.")
            return
        vapid = Vapid01()
        vapid.generate_keys()
        raw = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
        public = vapid.public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        lines = (
            f"VAPID_PRIVATE_KEY={base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}\n"
            f"VAPID_PUBLIC_KEY={base64.urlsafe_b64encode(public).rstrip(b'=').decode()}\n"
        )
        if target is None:
            self.stdout.write(lines, ending="")
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # Created 600 from the start: the private key is never readable by others, not even briefly.
        with os.fdopen(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(lines)
        self.stdout.write(f"Wrote a new VAPID key pair to {target}.")
