"""Example data bundled with diffpy.deepstruc."""
