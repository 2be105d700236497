"""schemathesis hooks for scripts/contract.sh: the rules of the API that JSON Schema cannot
say, told to the generator, so that it does not take a body the server rightly refuses for
one of them as a valid one. Each rule is in the operation's description in the document; the
server's tests (crates/api/tests/api/errors.rs) check that it refuses them with 422."""

from datetime import datetime

import schemathesis


def _time(value):
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00").replace("t", "T"))
    except ValueError:
        return None


@schemathesis.hook
def filter_case(ctx, case):
    body = case.body
    if not isinstance(body, dict):
        return True
    path = case.operation.path
    if path == "/v1/admin/events":
        # `closes_at` after `opens_at`.
        opens, closes = _time(body.get("opens_at")), _time(body.get("closes_at"))
        if opens is not None and closes is not None:
            try:
                return opens < closes
            except TypeError:
                return True
    if path == "/v1/admin/events/{event_id}/waiting-room":
        # `prequeue_opens_at` not after `opens_at`.
        prequeue, opens = _time(body.get("prequeue_opens_at")), _time(body.get("opens_at"))
        if prequeue is not None and opens is not None:
            try:
                return prequeue <= opens
            except TypeError:
                return True
    if path == "/v1/events/{event_id}/holds":
        # Each ticket type once per hold.
        items = body.get("items")
        if isinstance(items, list):
            ids = [i.get("ticket_type_id") for i in items if isinstance(i, dict)]
            hashable = [i for i in ids if isinstance(i, (int, float, str, bool)) or i is None]
            return len(hashable) == len(set(hashable))
    return True
