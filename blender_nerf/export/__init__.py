"""Export Dataset: ``plan`` decides every view (rig, selected cameras or an animation, splits,
scene bounds) before anything is rendered; ``job`` renders them one per step and writes the
dataset. Imports ``scene/`` only (it runs inside Blender, no engine process)."""
