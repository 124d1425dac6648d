"""The subscriber's unsubscribe page: plain HTML, no script, a form that works in any browser.

Everything shown comes from the merchant, so every value is escaped.
"""

from __future__ import annotations

from html import escape

REASONS = (
    "I no longer need these events",
    "There are too many events",
    "The events are not relevant to me",
    "I subscribed by mistake",
    "Another reason",
)

_STYLE = """
body{font:1.0625rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#1b1f24}
main{max-width:34rem;margin:3rem auto;padding:2rem;background:#fff;border-radius:.5rem;border:1px solid #d0d7de}
h1{font-size:1.5rem;margin-top:0}
fieldset{border:1px solid #d0d7de;border-radius:.375rem;margin:1.25rem 0;padding:.75rem 1rem}
legend{font-weight:600;padding:0 .25rem}
label{display:block;margin:.375rem 0}
textarea{width:100%;box-sizing:border-box;font:inherit;min-height:5rem}
button{font:inherit;font-weight:600;padding:.625rem 1.25rem;border:0;border-radius:.375rem;background:#b42318;
color:#fff;cursor:pointer}
button:focus-visible,input:focus-visible,textarea:focus-visible{outline:3px solid #0969da;outline-offset:2px}
.note{color:#4d5661}
"""

# No script may run, no resource may load from elsewhere, and the form may only post here.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def confirm_page(calendar_name: str, merchant: str, action: str) -> str:
    options = "\n".join(
        f'<label><input type="radio" name="reason" value="{escape(r)}"> {escape(r)}</label>' for r in REASONS
    )
    return _page(
        f"Unsubscribe from {calendar_name}",
        f"""<h1>Unsubscribe from {escape(calendar_name)}?</h1>
<p>You will stop receiving new and updated events from <strong>{escape(merchant)}</strong>'s calendar
<strong>{escape(calendar_name)}</strong>. Events already in your calendar app may stay until it refreshes.</p>
<form method="post" action="{escape(action)}">
<fieldset>
<legend>Why are you leaving? (optional)</legend>
{options}
<label for="comment">Anything else you would like to tell us? (optional)</label>
<textarea id="comment" name="comment" maxlength="1000"></textarea>
</fieldset>
<input type="hidden" name="confirm" value="yes">
<button type="submit">Unsubscribe</button>
</form>""",
    )


def done_page(calendar_name: str) -> str:
    return _page(
        "You have been unsubscribed",
        f"""<h1>You have been unsubscribed</h1>
<p>You will no longer receive events from <strong>{escape(calendar_name)}</strong>.</p>
<p class="note">You can remove the calendar from your calendar app at any time.</p>""",
    )


def inactive_page(calendar_name: str) -> str:
    return _page(
        "Already unsubscribed",
        f"""<h1>You are already unsubscribed</h1>
<p>This subscription to <strong>{escape(calendar_name)}</strong> is no longer active.</p>""",
    )


def not_found_page() -> str:
    return _page(
        "Subscription not found",
        """<h1>Subscription not found</h1>
<p>This unsubscribe link does not match any subscription. Check that the whole link was copied.</p>""",
    )


def reason_text(reason: str | None, comment: str | None) -> str | None:
    """The reason as the webhook payload carries it: the choice, then the subscriber's words."""
    chosen = (reason or "").strip()[:200]
    words = (comment or "").strip()[:1000]
    text = " - ".join(part for part in (chosen, words) if part)
    return text or None
