"""Using a trained field: one :class:`~.renderer.Renderer` that renders any camera and the
``render`` job that writes images (``renderer``), PSNR/SSIM of a split (``evaluate``), the metrics
themselves (``metrics``), ground truth vs NeRF reports with side-by-side images (``compare``) and
their figures (``plots``). May import ``..data``, ``..nerf``, ``..checkpoint`` and ``..runtime``;
never ``..train``.
"""
