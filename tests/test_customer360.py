"""Customer 360 metrics on tiny journeys: the open cart and the last journey a store associate sees."""

from __future__ import annotations

from datetime import datetime

from metrics import customer360
from tests.test_segments import carts  # noqa: F401  (the fixture: customers E–I)


def test_open_cart_is_what_was_added_after_the_last_purchase(carts):  # noqa: F811
    # E added to cart on 18 March on the web and never bought: one open item.
    e = customer360.open_cart(carts, customer_id="E")
    assert e.select("occurred_at", "channel").rows() == [(datetime(2026, 3, 18, 10), "web")]
    # F added on 10 March and bought in store the next day: nothing left open.
    assert customer360.open_cart(carts, customer_id="F").is_empty()
    # G added in the app on 1 March and only browsed later: still open.
    assert customer360.open_cart(carts, customer_id="G")["channel"].to_list() == ["app"]
    assert customer360.open_cart(carts, customer_id="nobody").is_empty()


def test_last_journey_ends_in_the_latest_purchase_or_drop_off(carts):  # noqa: F811
    # H browsed the web on 5 March and bought in store on 12 March.
    h = customer360.last_journey(carts, customer_id="H")
    assert (h["converted"], h["conversion_channel"], h["started_at"]) == (True, "store", datetime(2026, 3, 5, 10))
    assert h["path"] == "web"
    # G never bought: the latest journey is a drop-off.
    assert customer360.last_journey(carts, customer_id="G")["converted"] is False
    assert customer360.last_journey(carts, customer_id="nobody") is None
