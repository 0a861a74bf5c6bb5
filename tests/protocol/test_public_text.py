"""Nothing internal in public text: the note about an attachment that stayed behind, which the
customer reads on a public comment, names no instance of our YAML (issue 13, point 4)."""

from __future__ import annotations

from nhd_bridge.testing.fake import FakeTracker


def test_attachment_note_names_no_internal_instance(make_bridge) -> None:
    instances = {"zendesk-out": {"kind": "fake", "attachments": False}, "A": {"kind": "fake"}}
    bridge = make_bridge({"ab": {"sender": "A", "receiver": "zendesk-out"}}, instances)
    a = FakeTracker.named("A")
    ticket = a.create_ticket("Logs")
    a.add_comment(ticket, "see attached", attachments={"report.pdf": b"%PDF"})
    bridge.run()
    [copy] = FakeTracker.named("zendesk-out").tickets()
    [comment, note] = copy.comments
    assert comment.public and "was not copied" not in comment.body
    # The note is private where the target can hold one, and names nothing of ours anyway.
    assert not note.public and "'report.pdf' was not copied" in note.body
    assert "zendesk-out" not in note.body and " A " not in note.body
