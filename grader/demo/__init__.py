"""The demo class: sample submissions built from the answer catalogues, and the round trip on them."""
