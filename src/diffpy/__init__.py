#!/usr/bin/env python
##############################################################################
#
# (c) 2026 The diffpy.deepstruc developers.
# All rights reserved.
#
# File coded by: the diffpy.deepstruc developers.
#
# See LICENSE.rst for license information.
#
##############################################################################
"""diffpy - tools for structure analysis by diffraction."""
