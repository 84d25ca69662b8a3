#include "platform/xen/xen_xenstore.h"
