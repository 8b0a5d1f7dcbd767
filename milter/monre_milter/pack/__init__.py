"""Policy packs: YAML files admins edit, validated and compiled once at load."""
from .loader import Pack, PackErrors, format_size, load_pack, parse_size  # noqa: F401
