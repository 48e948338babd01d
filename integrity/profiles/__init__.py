"""BagIt Profile documents describing Qor bags (see docs/bag-profile.md)."""
