"""Presets of :class:`~nhd_bridge.testing.fake.Personality`: the fake behaving like a real tracker.

Each preset is what the real tracker showed on this project's test machines
(shared/redmine/NOTES.md, shared/roundup-notes.md, shared/rt5/NOTES.md) or, for Jira, what its
REST API documents; the pins in
``tests/test_fake_personalities.py`` check the switches against a real Roundup (and a real Redmine
where the harness runs). Use one with::

    FakeTracker.named("helpdesk").personality = REDMINE_LIKE   # before the adapter is built
"""

from __future__ import annotations

from types import MappingProxyType

from nhd_bridge.testing.fake import Personality

__all__ = ["JIRA_LIKE", "JIRA_WORKFLOW", "PRESETS", "REDMINE_LIKE", "ROUNDUP_LIKE", "RT_LIKE"]

#: Redmine 5.0 on SQLite: ``status_id`` on create is ignored by a stock workflow; the id of a
#: deleted newest issue is handed out again; the notes ``PUT`` appends a journal per request, and
#: the HTTP client retried it after a lost answer; ``sort=updated_on`` with ``offset`` pages
#: shifts when an issue is updated during the read. Private notes exist.
REDMINE_LIKE = Personality(
    ignored_on_create=frozenset({"status"}),
    reuses_ids=True,
    offset_pages_by_update=True,
    blind_retries=2,
)

#: Roundup 2.6 (classic schema): a comment is ``POST msg`` then a ``PATCH`` of the issue's
#: ``messages``; messages have no private flag. Status is accepted on create; ids come from a
#: sequence and are not reused; message content can be changed.
ROUNDUP_LIKE = Personality(two_step_comments=True, private_comments=False)

#: A Jira software workflow: the status moves only through transitions, and a create puts the
#: issue in the workflow's first status whatever was asked. Internal comments (JSM) exist.
JIRA_WORKFLOW = MappingProxyType(
    {
        "open": ("pending", "solved"),
        "pending": ("open", "solved"),
        "solved": ("open", "closed"),
        "closed": ("open",),
    }
)
JIRA_LIKE = Personality(ignored_on_create=frozenset({"status"}), transitions=JIRA_WORKFLOW)

#: RT 5: ``Status`` is accepted on create; ticket ids come from a sequence; a comment (private) or
#: correspond (public) is a transaction, appended per request and never editable.
RT_LIKE = Personality(comment_edits=False)

PRESETS: dict[str, Personality] = {
    "redmine": REDMINE_LIKE,
    "roundup": ROUNDUP_LIKE,
    "jira": JIRA_LIKE,
    "rt": RT_LIKE,
}
