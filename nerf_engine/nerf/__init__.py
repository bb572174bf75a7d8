"""The NeRF itself (Mildenhall et al. 2020), in torch: rays and their bounds (``rays``), random
training pixels (``pixel_sampler``), stratified and inverse-CDF sampling (``sampling``), the
occupancy grid for empty-space skipping (``occupancy``), positional encoding (``encoding``), the
MLP field (``field``), volume rendering maths (``volume_rendering``), the depth loss
(``depth_loss``) and the coarse + fine model
(``model``). Everything here works in the unit scene frame. May import ``..data`` and
``..config``; never the run folder, checkpoints, evaluation or training.
"""
