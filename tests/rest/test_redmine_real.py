"""Pins on a real Redmine 5.0: the behaviours of the tracker itself that the bridge must survive
(shared/redmine/NOTES.md), and the harness other tests stand on.

These test the tracker, not our adapter: if one fails, Redmine (or the harness) changed, and the
fixes built on the behaviour must be looked at again.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support.redmine import RedmineServer, populate

from nhd_bridge.adapters.rest import RestAdapter, RestConfig
from nhd_bridge.testing import FaultProxy

NEW, IN_PROGRESS = 1, 2


def create_issue(client: httpx.Client, project: str, subject: str, **fields: Any) -> dict[str, Any]:
    answer = client.post(
        "issues.json", json={"issue": {"project_id": project, "subject": subject, **fields}}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["issue"]


def issue(client: httpx.Client, issue_id: int) -> dict[str, Any]:
    answer = client.get(f"issues/{issue_id}.json", params={"include": "journals"})
    assert answer.status_code == 200, answer.text
    return answer.json()["issue"]


def notes_of(client: httpx.Client, issue_id: int) -> list[str]:
    return [entry["notes"] for entry in issue(client, issue_id)["journals"] if entry["notes"]]


# -- the harness -------------------------------------------------------------------------------


def test_each_test_gets_its_own_project_where_the_uuid_field_filters(
    redmine: RedmineServer,
) -> None:
    assert redmine.project != "support"
    shared_uuid = str(uuid.uuid4())
    field = f"cf_{redmine.uuid_field_id}"
    with redmine.api() as client:
        made = create_issue(
            client,
            redmine.project,
            "with a breadcrumb",
            custom_fields=[{"id": redmine.uuid_field_id, "value": shared_uuid}],
        )
        create_issue(client, redmine.project, "without one")
        params = {"project_id": redmine.project, "status_id": "*", field: shared_uuid}
        found = client.get("issues.json", params=params).json()

    assert [item["id"] for item in found["issues"]] == [made["id"]]
    assert made["custom_fields"] == [
        {"id": redmine.uuid_field_id, "name": "nhd_uuid", "value": shared_uuid}
    ]


def test_instance_config_is_a_working_redmine_instance(redmine: RedmineServer) -> None:
    config = redmine.instance_config()
    assert config["kind"] == "rest" and config["base_url"] == redmine.url
    assert config["vars"] == {"project_id": redmine.project, "uuid_field_id": redmine.uuid_field_id}
    settings = {key: value for key, value in config.items() if key != "kind"}

    results = RestAdapter("redmine", RestConfig.model_validate(settings)).check()

    assert all(result.ok for result in results), results


def test_a_private_instance_restarts_with_its_data_and_key(
    redmine_factory: Callable[[], RedmineServer],
) -> None:
    server = redmine_factory()
    with server.api() as client:
        made = create_issue(client, server.project, "before the restart")
    key, url = server.api_key, server.url

    server.stop()
    with pytest.raises(httpx.ConnectError), server.api() as client:
        client.get("users/current.json")
    server.start()

    assert (server.api_key, server.url) == (key, url)
    with server.api() as client:
        assert issue(client, made["id"])["subject"] == "before the restart"


def test_populate_fills_a_project_as_people_would(redmine: RedmineServer) -> None:
    ids = populate(redmine, issues=3, notes_each=2)

    with redmine.api() as client:
        listed = client.get(
            "issues.json", params={"project_id": redmine.project, "status_id": "*", "sort": "id"}
        ).json()
        last = issue(client, ids[-1])
    assert [item["id"] for item in listed["issues"]] == ids
    assert (last["subject"], last["description"]) == ("Issue 3", "Description of issue 3")
    notes = [entry["notes"] for entry in last["journals"]]
    assert notes == ["Note 1 of issue 3", "Note 2 of issue 3"]
    assert last["updated_on"] >= last["created_on"]


# -- the tracker's behaviours --------------------------------------------------------------------


def test_status_id_is_ignored_on_create_and_taken_by_an_update(redmine: RedmineServer) -> None:
    with redmine.api() as client:
        made = create_issue(client, redmine.project, "wants to start in progress", status_id=2)
        assert made["status"]["id"] == NEW
        assert issue(client, made["id"])["status"]["id"] == NEW

        answer = client.put(f"issues/{made['id']}.json", json={"issue": {"status_id": 2}})
        assert answer.status_code == 204
        assert issue(client, made["id"])["status"]["id"] == IN_PROGRESS


def test_a_note_whose_answer_was_lost_was_written_and_a_blind_retry_doubles_it(
    redmine: RedmineServer,
) -> None:
    with redmine.api() as client:
        made = create_issue(client, redmine.project, "gets one comment")
    with (
        FaultProxy(redmine.url) as proxy,
        httpx.Client(
            base_url=proxy.url, headers={"X-Redmine-API-Key": redmine.api_key}, trust_env=False
        ) as through_proxy,
    ):
        proxy.next("lost_answer", method="PUT", path_regex=r"/issues/\d+\.json")
        note = {"issue": {"notes": "The customer called back."}}
        with pytest.raises(httpx.RemoteProtocolError):
            through_proxy.put(f"issues/{made['id']}.json", json=note)

        with redmine.api() as client:
            assert notes_of(client, made["id"]) == ["The customer called back."]

        assert through_proxy.put(f"issues/{made['id']}.json", json=note).status_code == 204
    with redmine.api() as client:
        assert notes_of(client, made["id"]) == ["The customer called back."] * 2


def test_a_create_whose_answer_was_lost_was_created(redmine: RedmineServer) -> None:
    shared_uuid = str(uuid.uuid4())
    with (
        FaultProxy(redmine.url) as proxy,
        httpx.Client(
            base_url=proxy.url, headers={"X-Redmine-API-Key": redmine.api_key}, trust_env=False
        ) as through_proxy,
    ):
        proxy.next("gateway_after", method="POST", path_regex=r"/issues\.json", status=504)
        answer = through_proxy.post(
            "issues.json",
            json={
                "issue": {
                    "project_id": redmine.project,
                    "subject": "created in the dark",
                    "custom_fields": [{"id": redmine.uuid_field_id, "value": shared_uuid}],
                }
            },
        )
    assert answer.status_code == 504
    with redmine.api() as client:
        found = client.get(
            "issues.json",
            params={"status_id": "*", f"cf_{redmine.uuid_field_id}": shared_uuid},
        ).json()
    assert [item["subject"] for item in found["issues"]] == ["created in the dark"]


def test_the_id_of_a_deleted_newest_issue_is_handed_out_again(
    redmine_factory: Callable[[], RedmineServer],
) -> None:
    server = redmine_factory()
    with server.api() as client:
        create_issue(client, server.project, "older")
        newest = create_issue(client, server.project, "newest, then deleted")
        assert client.delete(f"issues/{newest['id']}.json").status_code == 204

        reborn = create_issue(client, server.project, "a different ticket")

    assert reborn["id"] == newest["id"]


def test_an_issue_updated_during_a_read_sorted_by_updated_on_hides_another_one(
    redmine: RedmineServer,
) -> None:
    params = {"project_id": redmine.project, "status_id": "*", "sort": "updated_on,id", "limit": 2}
    with redmine.api() as client:
        made = [create_issue(client, redmine.project, f"issue {n}")["id"] for n in range(6)]

        def page(offset: int) -> list[int]:
            answer = client.get("issues.json", params={**params, "offset": offset})
            return [item["id"] for item in answer.raise_for_status().json()["issues"]]

        first = page(0)
        assert first == made[:2]
        # Someone comments on the first issue while the reader is between pages.
        client.put(f"issues/{made[0]}.json", json={"issue": {"notes": "moved"}}).raise_for_status()
        rest = page(2) + page(4) + page(6)

    seen = first + rest
    assert made[2] not in seen  # shifted onto the page already read: never listed
    assert seen.count(made[0]) == 2  # listed again at the end
    assert sorted(set(seen)) == sorted(set(made) - {made[2]})


def test_journals_come_only_with_a_single_issue(redmine: RedmineServer) -> None:
    with redmine.api() as client:
        made = create_issue(client, redmine.project, "has a note", description="the description")
        client.put(f"issues/{made['id']}.json", json={"issue": {"notes": "a note"}})

        listed = client.get(
            "issues.json",
            params={"project_id": redmine.project, "status_id": "*", "include": "journals"},
        ).json()["issues"]
        single = issue(client, made["id"])

    [item] = listed
    assert "journals" not in item
    assert [entry["notes"] for entry in single["journals"]] == ["a note"]
    assert single["description"] == "the description"
