"""Developer tools on top of everything else: benchmarks (``bench``: throughput, memory;
``bench_curves``: quality against the clock and the plain reference NeRF; ``suite``: the scene
suite, per scene with the mean and the worst; ``profile``: where a step's time goes;
``variants``: configurations by name) and the procedural test scene (``toy_scene``). May import
every other folder; only ``..cli`` imports them.
"""
