import os

from hypothesis import settings

from boxlib.testing import register_profiles

register_profiles()
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "boxlib"))
