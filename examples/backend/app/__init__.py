"""CNT reference backend."""
