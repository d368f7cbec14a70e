"""One colour per channel everywhere, so "store" is the same orange on every chart."""

from __future__ import annotations

CHANNEL_COLORS = {
    "web": "#4C78A8",
    "app": "#72B7B2",
    "email": "#EECA3B",
    "social": "#B279A2",
    "sms": "#9D755D",
    "store": "#F58518",
    "support": "#E45756",
    "all": "#333333",
}
FALLBACK_COLORS = ("#54A24B", "#FF9DA6", "#BAB0AC", "#79706E", "#D67195", "#439894")
FONT = "Inter, Segoe UI, Helvetica, Arial, sans-serif"


def channel_color(channel: str, *, position: int = 0) -> str:
    """A stable colour for known channels; a palette colour for a store's own channel names."""
    return CHANNEL_COLORS.get(channel, FALLBACK_COLORS[position % len(FALLBACK_COLORS)])


def color_map(channels: list[str]) -> dict[str, str]:
    return {channel: channel_color(channel, position=i) for i, channel in enumerate(channels)}
