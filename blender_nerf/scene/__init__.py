"""The scene layer: everything that reads or changes a Blender scene for more than one feature.

``scene_io`` is the one bridge between bpy objects and plain data (cameras -> intrinsics and
poses, subject objects -> points, image files <-> Blender images); ``geometry`` is the camera
maths in numpy (no bpy); ``shots`` plans which camera renders at which pose (the one planner of
Export, Render Views and Compare); ``blender_render`` sets up Blender's renderer and puts the
scene back; ``paths`` turns folder settings into checked folders; ``units`` writes a distance in
the scene's units for messages. Modules here import each other, ``nerf_engine.data`` and bpy,
and nothing from the feature folders, ``jobs/`` or ``ui/``.
"""
