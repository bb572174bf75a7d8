"""Engine processes and how Blender watches them.

``process`` runs commands in child processes without blocking (``ProcessJob``, ``stop_all``);
``engine_job`` reads the engine's JSON-lines events, the same for every job (``EngineJob``);
``engine_python`` finds the interpreter that runs the engine and installs its packages;
``watcher`` is the one registry of running jobs, polled by a timer on Blender's main thread (one
job per scene, its progress and outcome copied into ``scene.nerf``). No bpy in ``process`` and
``engine_job`` (tests drive them directly); ``engine_python`` uses bpy only for Blender's user
folders; ``watcher`` may import ``scene/`` (for ``SceneError``), nothing from the feature
folders.
"""
