"""Wiki markup and ADF ↔ NHD text: round trips of tricky text, and what Jira authors write."""

from __future__ import annotations

import pytest

from nhd_bridge.adapters.jira.markup import (
    adf_to_html,
    adf_to_text,
    attachment_names_in_adf,
    attachment_names_in_wiki,
    text_to_adf,
    text_to_wiki,
    wiki_to_html,
    wiki_to_text,
)

TRICKY = [
    "We are on it.",
    "Agents only: the customer is on the old plan.",
    "Ping [~admin] and [~accountid:5b10ac8d82e05b22cc7d4ef5] — nobody gets notified.",
    "*not bold* _not italic_ -not struck- +not under+ ^sup^ ~sub~ ??cite??",
    "C:\\Users\\ada\\file.txt and a trailing backslash \\",
    "{code} {noformat} {color:red}x{color} [link|https://evil.example] !image.png!",
    "e-mail, re-run, snake_case_name, 2*3=6, a+b, x^2",
    "# not a heading\n* not a list either? it is a list in plain text too\nh1. not a heading",
    "50% off -- really --- done ---- yes",
    "See https://example.com/a_b-c?x=1&y=[2]. Then (https://x.org/path).",
    "```python\ndef f(*args, **kw):\n    return {k: v for k, v in kw.items()}  # [~admin]\n```",
    "```\n\nblank lines inside\n\n\nstay\n```",
    "- one\n- two with https://x.org\n- three *starred*",
    "1. first\n2. second\n3. third",
    "line one\nline two\n\nnew paragraph",
    "| a | b |\n|| header ||",
    "Ünïcödé ✓ emoji 🎉 and &amp; entities &#92;",
]


@pytest.mark.parametrize("text", TRICKY)
def test_plain_text_survives_a_trip_through_wiki_markup(text):
    assert wiki_to_text(text_to_wiki(text)) == text


@pytest.mark.parametrize("text", TRICKY)
def test_plain_text_survives_a_trip_through_adf(text):
    assert adf_to_text(text_to_adf(text)) == text


def test_mentions_are_escaped_so_a_mirror_pings_nobody():
    wiki = text_to_wiki("cc [~admin]")
    assert "[~" not in wiki.replace("\\[\\~", "")
    adf = text_to_adf("cc @admin [~admin]")
    assert "mention" not in str(adf)


def test_code_blocks_are_kept_verbatim_in_both_markups():
    text = "```sql\nSELECT * FROM t WHERE a_b = '[x]';\n```"
    assert text_to_wiki(text) == "{code:sql}\nSELECT * FROM t WHERE a_b = '[x]';\n{code}"
    [block] = text_to_adf(text)["content"]
    assert block == {
        "type": "codeBlock",
        "attrs": {"language": "sql"},
        "content": [{"type": "text", "text": "SELECT * FROM t WHERE a_b = '[x]';"}],
    }


def test_links_and_lists_become_real_markup():
    adf = text_to_adf("- see https://x.org")
    [bullets] = adf["content"]
    assert bullets["type"] == "bulletList"
    [item] = bullets["content"]
    link = item["content"][0]["content"][1]
    assert link["marks"] == [{"type": "link", "attrs": {"href": "https://x.org"}}]
    assert text_to_wiki("- see https://x.org") == "- see [https://x.org]"


def test_what_a_jira_author_writes_in_wiki_reads_as_text_and_html():
    wiki = (
        "Hi [~accountid:5b10], see [the docs|https://docs.example/a_b] and {{cfg.yaml}}.\n"
        "*Important*: _really_.\n\n"
        "{code:bash}\nrm -rf *tmp*\n{code}\n\n"
        "# step one\n# step two\n\n"
        "[^trace.log] !screen.png|thumbnail!"
    )
    assert wiki_to_text(wiki) == (
        "Hi @5b10, see the docs (https://docs.example/a_b) and `cfg.yaml`.\n"
        "*Important*: _really_.\n\n"
        "```bash\nrm -rf *tmp*\n```\n\n"
        "1. step one\n2. step two\n\n"
        "trace.log screen.png"
    )
    html = wiki_to_html(wiki)
    assert '<a href="https://docs.example/a_b">the docs</a>' in html
    assert '<span class="mention">@5b10</span>' in html
    assert '<pre><code class="language-bash">rm -rf *tmp*</code></pre>' in html
    assert "<ol><li>step one</li><li>step two</li></ol>" in html
    assert attachment_names_in_wiki(wiki) == ["trace.log", "screen.png"]


def test_what_a_jira_author_writes_in_adf_reads_as_text_and_html():
    document = {
        "type": "doc",
        "version": 1,
        "content": [
            {
                "type": "paragraph",
                "content": [
                    {"type": "mention", "attrs": {"id": "5b10", "text": "@Ada Lovelace"}},
                    {"type": "text", "text": " look at "},
                    {
                        "type": "text",
                        "text": "this",
                        "marks": [{"type": "link", "attrs": {"href": "https://x.org"}}],
                    },
                    {"type": "hardBreak"},
                    {"type": "emoji", "attrs": {"shortName": ":tada:", "text": "🎉"}},
                    {"type": "text", "text": "bold", "marks": [{"type": "strong"}]},
                ],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "outer"}]},
                            {
                                "type": "bulletList",
                                "content": [
                                    {
                                        "type": "listItem",
                                        "content": [
                                            {
                                                "type": "paragraph",
                                                "content": [{"type": "text", "text": "inner"}],
                                            }
                                        ],
                                    }
                                ],
                            },
                        ],
                    }
                ],
            },
            {
                "type": "blockquote",
                "content": [{"type": "paragraph", "content": [{"type": "text", "text": "quoted"}]}],
            },
            {
                "type": "mediaSingle",
                "content": [
                    {"type": "media", "attrs": {"id": "9f1c", "type": "file", "alt": "shot.png"}}
                ],
            },
            {"type": "rule"},
        ],
    }
    assert adf_to_text(document) == (
        "@Ada Lovelace look at this (https://x.org)\n🎉*bold*\n\n"
        "- outer\n-   inner\n\n> quoted\n\n---"
    )
    assert '<span class="mention">@Ada Lovelace</span>' in adf_to_html(document)
    assert attachment_names_in_adf(document) == ["shot.png"]


def test_a_wiki_body_where_adf_was_expected_is_read_as_text():
    assert adf_to_text("plain v2 body") == "plain v2 body"
    assert adf_to_text(None) == ""
