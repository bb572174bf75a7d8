"""Train NeRF: ``job`` is the training request and its engine job (plain data, no bpy);
``start`` turns ``Scene.nerf`` into a request, starts it and copies its numbers and previews back
onto the scene. Imports ``scene/``, ``jobs/`` and ``preferences``, no other feature folder."""
