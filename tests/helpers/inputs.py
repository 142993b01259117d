"""What hostile tests draw from (hypothesis strategies)."""

from __future__ import annotations

from hypothesis import strategies as st

CHANNELS = st.sampled_from(
    [
        "/meta/handshake",
        "/meta/connect",
        "/meta/disconnect",
        "/meta/subscribe",
        "/meta/unsubscribe",
        "/meta/other",
        "/meta/subscribe/x",
        "/chat",
        "/chat/*",
        "/chat/**",
        "/service/x",
        "bad",
        "",
        "/a//b",
        "/meta",
        "/\u00e9",
    ]
)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


FIELD = st.sampled_from(
    [
        "id",
        "clientId",
        "data",
        "ext",
        "advice",
        "subscription",
        "version",
        "supportedConnectionTypes",
        "connectionType",
        "successful",
    ]
)
