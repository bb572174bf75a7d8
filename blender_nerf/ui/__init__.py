"""The sidebar tab "NeRF" and the camera's NeRF settings: ``panels`` (main, Dataset, Training,
Camera) and ``panels_views`` (Render, Compare). Draw code lives in module functions taking
``(layout, context)`` so tests draw it into a recording layout. The top layer: it may import
anything in the add-on; nothing imports it but the package's ``__init__``."""
