"""Distances in messages, written as the scene's own fields show them.

Blender units become the scene's length unit through ``scene.unit_settings`` (Unit System, Unit
Scale, Length): a room modelled in centimetres reads "250 cm", an imperial scene "8.2'", and a
scene without units a plain number. Blender does the formatting and the unit conversion
(``bpy.utils.units``); :func:`length` is the one place the add-on writes a distance for the artist.
"""

from __future__ import annotations

import bpy

PRECISION = 3  # digits, as Blender's own fields show a length


def length(scene: bpy.types.Scene, value: float, precision: int = PRECISION) -> str:
    """``value`` (a distance in Blender units) as ``scene`` shows lengths: "12.5 cm", "1.2 m",
    "3' 4\\"" (with Separate Units), "0.25" for the unit system None.

    An Adaptive length unit picks the unit by size, as Blender's fields do; a fixed one (Length:
    Centimeters) always writes that unit. Unit Scale applies as it does in Blender's fields.
    """
    units = scene.unit_settings
    if units.system == "NONE":
        return _number(value, precision)
    metres = value * units.scale_length
    if units.length_unit == "ADAPTIVE":
        return bpy.utils.units.to_string(
            units.system, "LENGTH", metres, precision=precision, split_unit=units.use_separate
        )
    # A fixed unit: Blender parses its name ("centimeters" -> 0.01 m) and writes its symbol.
    unit = bpy.utils.units.to_value(units.system, "LENGTH", f"1 {units.length_unit.lower()}")
    symbol = bpy.utils.units.to_string(units.system, "LENGTH", unit).strip()[1:]
    return _number(metres / unit, precision) + symbol


def _number(value: float, precision: int) -> str:
    """A plain number with ``precision`` digits as Blender writes one ("0.0123", "1235")."""
    return bpy.utils.units.to_string("NONE", "NONE", value, precision=precision).strip()
