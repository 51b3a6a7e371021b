"""Routes of Microsoft.Network (its operation-status route lives with Microsoft.Resources)."""

from __future__ import annotations

from emulator.core.routing import RG, SUB, Router
from emulator.services.network import responses as r
from emulator.services.network.models import NIC, NSG, PIP, VNET

router = Router()
P = "/providers/Microsoft.Network"
NAME = r"/(?P<name>[^/]+)"

for rtype in (VNET, NSG, PIP, NIC):
    segment = rtype.split("/", 1)[1]
    router.add("GET", SUB + f"{P}/{segment}", f"{rtype}/read")(r.list_subscription(rtype))
    router.add("GET", RG + f"{P}/{segment}", f"{rtype}/read")(r.list_group(rtype))
    router.add("GET", RG + f"{P}/{segment}" + NAME, f"{rtype}/read")(r.get(rtype))
    router.add("PUT", RG + f"{P}/{segment}" + NAME, f"{rtype}/write")(r.put(rtype))
    router.add("PATCH", RG + f"{P}/{segment}" + NAME, f"{rtype}/write")(r.patch(rtype))
    router.add("DELETE", RG + f"{P}/{segment}" + NAME, f"{rtype}/delete")(r.delete(rtype))

_SUBNETS = RG + f"{P}/virtualNetworks/(?P<vnet>[^/]+)/subnets"
router.add("GET", _SUBNETS, "Microsoft.Network/virtualNetworks/subnets/read")(r.list_subnets)
router.add("GET", _SUBNETS + NAME, "Microsoft.Network/virtualNetworks/subnets/read")(r.get_subnet)
router.add("PUT", _SUBNETS + NAME, "Microsoft.Network/virtualNetworks/subnets/write")(r.put_subnet)
router.add("DELETE", _SUBNETS + NAME, "Microsoft.Network/virtualNetworks/subnets/delete")(r.delete_subnet)

_RULES = RG + f"{P}/networkSecurityGroups/(?P<nsg>[^/]+)/securityRules"
router.add("GET", _RULES, "Microsoft.Network/networkSecurityGroups/securityRules/read")(r.list_rules)
router.add("GET", _RULES + NAME, "Microsoft.Network/networkSecurityGroups/securityRules/read")(r.get_rule)
router.add("PUT", _RULES + NAME, "Microsoft.Network/networkSecurityGroups/securityRules/write")(r.put_rule)
router.add("DELETE", _RULES + NAME, "Microsoft.Network/networkSecurityGroups/securityRules/delete")(r.delete_rule)

_DEFAULT_RULES = RG + f"{P}/networkSecurityGroups/(?P<nsg>[^/]+)/defaultSecurityRules"
router.add("GET", _DEFAULT_RULES, "Microsoft.Network/networkSecurityGroups/defaultSecurityRules/read")(r.list_default_rules)
router.add("GET", _DEFAULT_RULES + NAME,
           "Microsoft.Network/networkSecurityGroups/defaultSecurityRules/read")(r.get_default_rule)

_IPCONFIGS = RG + f"{P}/networkInterfaces/(?P<nic>[^/]+)/ipConfigurations"
router.add("GET", _IPCONFIGS, "Microsoft.Network/networkInterfaces/ipconfigurations/read")(r.list_ip_configurations)
router.add("GET", _IPCONFIGS + NAME, "Microsoft.Network/networkInterfaces/ipconfigurations/read")(r.get_ip_configuration)
