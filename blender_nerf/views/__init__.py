"""Render Views and the ways back into Blender.

``plan`` checks a trained run folder and writes the cameras the engine renders
(``cameras.json``) and which Blender camera each image belongs to (``blender_views.json``);
``jobs`` holds the engine command of a render; ``render_views`` starts it and shows the result;
``import_view`` brings rendered images back as planes, camera backgrounds or a compositor
background; ``import_cameras`` makes Blender cameras from a transforms file. Imports ``scene/``,
``jobs/`` and ``preferences``, no other feature folder."""
