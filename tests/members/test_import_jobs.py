"""Imports as background jobs: the upload is checked and stored at once, a worker imports it."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from members import importing
from members.importing import JobProgress, import_job_run
from members.models import ImportJob, ImportStatus, Member
from members.tasks import import_job_run_task
from tests.conftest import on_postgresql
from tests.members.test_importing import MEMBERS, VISITS


def upload(client, members: bytes, visits: bytes | None = None, capture=None):
    data = {"members_file": SimpleUploadedFile("members.csv", members, content_type="text/csv")}
    if visits is not None:
        data["visits_file"] = SimpleUploadedFile("visits.csv", visits, content_type="text/csv")
    return client.post("/members/import/", data)


def job_make(business, **fields) -> ImportJob:
    now = timezone.now()
    with scopes_disabled():
        return ImportJob.objects.create(business=business, created_at=now, updated_at=now, **fields)


def job_update(job: ImportJob, **fields) -> None:
    with scopes_disabled():
        ImportJob.objects.filter(pk=job.pk).update(**fields)


def only_job(business) -> ImportJob:
    with scope(business=business.pk):
        return ImportJob.objects.get()


def test_an_upload_is_stored_as_a_queued_job_enqueued_on_commit_and_nothing_imported_yet(
    owner_client, business, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = upload(owner_client, MEMBERS.encode("utf-8-sig"), VISITS.encode())

    job = only_job(business)
    assert response.status_code == 302 and response["Location"] == f"/members/import/{job.pk}/"
    assert (job.status, job.total_rows, job.members_name, job.visits_name) == ("queued", 6, "members.csv", "visits.csv")
    assert len(callbacks) == 1  # the task is sent once the job has committed
    with scope(business=business.pk):
        assert Member.objects.count() == 0


def test_the_job_imports_everything_and_its_page_shows_the_result(owner_client, business, owner):
    upload(owner_client, MEMBERS.encode("utf-8-sig"), VISITS.encode())
    job = only_job(business)

    with scope(business=business.pk):
        assert import_job_run(job_id=job.pk) == "done"

    job = only_job(business)
    assert (job.status, job.members_imported, job.visits_imported, job.errors) == ("done", 2, 4, [])
    assert (job.rows_done, job.percent, job.members_csv, job.visits_csv) == (6, 100, "", "")  # the upload is gone
    assert job.finished_at is not None
    with scope(business=business.pk):
        assert Member.objects.count() == 2
        assert Member.objects.get(card_code="K001").stamps_balance == 4
    body = owner_client.get(f"/members/import/{job.pk}/").content.decode()
    assert "Imported 2 members and 4 visits" in body
    assert "hx-trigger" not in body  # a finished job stops polling


def test_a_job_with_bad_rows_imports_nothing_and_names_every_bad_line(owner_client, business):
    upload(owner_client, b"first_name,phone,stamps\nA,+60123456789,1\nB,12,\nC,,99999999999\n")
    job = only_job(business)

    with scope(business=business.pk):
        assert import_job_run(job_id=job.pk) == "failed"

    job = only_job(business)
    assert job.status == "failed"
    assert [(e["line"], e["field"]) for e in job.errors] == [(3, "phone"), (4, "stamps")]
    with scope(business=business.pk):
        assert Member.objects.count() == 0
    body = owner_client.get(f"/members/import/{job.pk}/progress/").content.decode()
    assert "Nothing was imported" in body
    assert "<td>3</td><td>phone</td>" in body and "<td>4</td><td>stamps</td>" in body


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"first_name,shoe_size\nA,42\n", "unknown column"),
        ("first_name\nJos\u00e9\n".encode("latin-1"), "not UTF-8"),
        (b"", "empty"),
    ],
)
def test_an_upload_with_a_bad_header_or_encoding_is_refused_at_once(owner_client, business, content, message):
    response = upload(owner_client, content)

    assert response.status_code == 200
    assert message in response.content.decode()
    with scope(business=business.pk):
        assert not ImportJob.objects.exists()


def test_an_upload_over_the_row_limit_is_refused_at_once(owner_client, business, monkeypatch):
    monkeypatch.setattr(importing.files, "MAX_ROWS", 3)  # read where the rows are counted

    response = upload(owner_client, b"first_name\nA\nB\nC\nD\n")

    assert "more than 3 rows; split the file" in response.content.decode()
    with scope(business=business.pk):
        assert not ImportJob.objects.exists()


def test_the_import_page_lists_recent_imports_of_this_business_only(owner_client, business, other_business):
    upload(owner_client, MEMBERS.encode())
    job = only_job(business)
    with scope(business=business.pk):
        import_job_run(job_id=job.pk)
    theirs = job_make(other_business, members_name="theirs.csv")

    body = owner_client.get("/members/import/").content.decode()

    assert f"/members/import/{job.pk}/" in body and "2 members, 0 visits" in body
    assert f"/members/import/{theirs.pk}/" not in body and "theirs.csv" not in body


def test_a_running_job_page_polls_its_progress(owner_client, business):
    upload(owner_client, MEMBERS.encode())
    job = only_job(business)
    job_update(job, status="running", rows_checked=2, rows_done=1)

    body = owner_client.get(f"/members/import/{job.pk}/").content.decode()

    assert f'hx-get="/members/import/{job.pk}/progress/"' in body
    assert 'value="75"' in body  # checked 2 of 2, written 1 of 2
    assert "You can leave this page" in body


def test_another_business_import_job_answers_404(owner_client, other_business):
    theirs = job_make(other_business)

    assert owner_client.get(f"/members/import/{theirs.pk}/").status_code == 404
    assert owner_client.get(f"/members/import/{theirs.pk}/progress/").status_code == 404


def test_staff_cannot_see_import_jobs(staff_client, business):
    job = job_make(business)

    assert staff_client.get(f"/members/import/{job.pk}/progress/").status_code == 403


def test_a_finished_job_run_again_changes_nothing(owner_client, business):
    upload(owner_client, MEMBERS.encode())
    job = only_job(business)
    with scope(business=business.pk):
        import_job_run(job_id=job.pk)
        assert import_job_run(job_id=job.pk) == "done"  # a redelivered task
        assert Member.objects.count() == 2


def test_a_running_job_is_left_alone_until_its_heartbeat_is_stale(owner_client, business):
    upload(owner_client, MEMBERS.encode())
    job = only_job(business)
    job_update(job, status="running", updated_at=timezone.now())
    with scope(business=business.pk):
        assert import_job_run(job_id=job.pk) == "running"
        assert Member.objects.count() == 0

        # Its worker died (its transaction rolled back): a redelivery takes it again.
        job_update(job, updated_at=timezone.now() - importing.STALE - timedelta(seconds=1))
        assert import_job_run(job_id=job.pk) == "done"
        assert Member.objects.count() == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_progress_is_seen_by_another_connection_while_the_import_transaction_is_open(business):
    job = job_make(business, total_rows=10)
    reader = connections.create_connection(DEFAULT_DB_ALIAS)  # the page's connection
    table = ImportJob._meta.db_table
    assert on_postgresql()

    def seen() -> tuple[int, int]:
        with reader.cursor() as cursor:
            cursor.execute(f"SELECT rows_checked, rows_done FROM {table} WHERE id = %s", [job.pk])
            return cursor.fetchone()

    with pytest.raises(RuntimeError), transaction.atomic():
        progress = JobProgress(job)
        progress.checked(10)
        progress.written(4)
        assert seen() == (10, 4)  # before the import's transaction commits
        raise RuntimeError("the import fails")
    progress.close()
    reader.close()

    assert seen() == (10, 4)  # and a rollback does not take it back
    assert only_job(business).status == ImportStatus.QUEUED


def test_the_task_with_another_business_job_id_changes_nothing(business, other_business):
    theirs = job_make(other_business, members_csv="first_name\nMallory\n", total_rows=1)

    result = import_job_run_task.apply(kwargs={"business_id": business.pk, "job_id": theirs.pk})

    assert result.get() == "missing"
    with scopes_disabled():
        assert ImportJob.objects.get(pk=theirs.pk).status == "queued"
        assert not Member.objects.filter(first_name="Mallory").exists()


def test_the_task_runs_the_job_in_its_business_scope(business):
    job = job_make(business, members_csv="first_name\nWei\n", total_rows=1)

    assert import_job_run_task.apply(kwargs={"business_id": business.pk, "job_id": job.pk}).get() == "done"
    with scope(business=business.pk):
        assert Member.objects.get().first_name == "Wei"
