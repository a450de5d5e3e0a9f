"""Device profiles and the cost model: does it fit the chip, and what does it cost the battery?"""

from wearprune.devices.cost import Cost, estimate_cost
from wearprune.devices.lower import Lowered, lower
from wearprune.devices.profile import DeviceProfile, list_devices, load_device

__all__ = ["Cost", "DeviceProfile", "Lowered", "estimate_cost", "list_devices", "load_device", "lower"]
