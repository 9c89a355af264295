// What every Vulkan layer of the tests shares: the loader's link
// structures, with the layouts of the Vulkan loader interface (vk_layer.h,
// whose headers need not be installed), and the entry points that chain
// the layer in. A layer defines layer_CreateDevice, which calls
// device_link first, and layer_DeviceProcAddr, which answers with HOOK for
// the device functions it wraps (NULL for the rest).
#include <stdint.h>
#include <string.h>

typedef int32_t VkResult;
typedef void (*PFN_vkVoidFunction)(void);
typedef PFN_vkVoidFunction (*PFN_gipa)(void *instance, const char *name);
typedef PFN_vkVoidFunction (*PFN_gdpa)(void *device, const char *name);

enum { LOADER_INSTANCE_CREATE_INFO = 47, LOADER_DEVICE_CREATE_INFO = 48, LAYER_LINK_INFO = 0 };
enum { VK_SUCCESS = 0, VK_ERROR_OUT_OF_DEVICE_MEMORY = -2, VK_ERROR_INITIALIZATION_FAILED = -3, VK_ERROR_DEVICE_LOST = -4 };

// The loader's link structures, found in the pNext chains of the create
// infos (VK_STRUCTURE_TYPE_LOADER_INSTANCE/DEVICE_CREATE_INFO).
typedef struct base { int32_t sType; const struct base *pNext; } base;
typedef struct ilink { struct ilink *pNext; PFN_gipa nextGIPA; void *nextGPDPA; } ilink;
typedef struct { int32_t sType; const void *pNext; int32_t function; union { ilink *pLayerInfo; void *other; } u; } icreate;
typedef struct dlink { struct dlink *pNext; PFN_gipa nextGIPA; PFN_gdpa nextGDPA; } dlink;
typedef struct { int32_t sType; const void *pNext; int32_t function; union { dlink *pLayerInfo; void *other; } u; } dcreate;

typedef VkResult (*PFN_createInstance)(const void *, const void *, void **);
typedef VkResult (*PFN_createDevice)(void *, const void *, const void *, void **);

// The next layer's (or the driver's) entry points. One instance and one
// device at a time are enough for the tests.
static PFN_gipa next_gipa;
static PFN_gdpa next_gdpa;
static void *the_instance;

static VkResult layer_CreateInstance(const void *info, const void *alloc, void **inst) {
	icreate *c = (icreate *)((const base *)info)->pNext;
	while (c && !(c->sType == LOADER_INSTANCE_CREATE_INFO && c->function == LAYER_LINK_INFO)) c = (icreate *)c->pNext;
	if (!c) return VK_ERROR_INITIALIZATION_FAILED;
	next_gipa = c->u.pLayerInfo->nextGIPA;
	c->u.pLayerInfo = c->u.pLayerInfo->pNext;
	PFN_createInstance create = (PFN_createInstance)next_gipa(NULL, "vkCreateInstance");
	VkResult r = create(info, alloc, inst);
	if (r == VK_SUCCESS) the_instance = *inst;
	return r;
}

// device_link takes this layer's link out of a device create info's chain
// and returns the next vkCreateDevice (NULL where the chain has no link).
static PFN_createDevice device_link(const void *info) {
	dcreate *c = (dcreate *)((const base *)info)->pNext;
	while (c && !(c->sType == LOADER_DEVICE_CREATE_INFO && c->function == LAYER_LINK_INFO)) c = (dcreate *)c->pNext;
	if (!c) return NULL;
	PFN_gipa gipa = c->u.pLayerInfo->nextGIPA;
	next_gdpa = c->u.pLayerInfo->nextGDPA;
	c->u.pLayerInfo = c->u.pLayerInfo->pNext;
	return (PFN_createDevice)gipa(the_instance, "vkCreateDevice");
}

static VkResult layer_CreateDevice(void *phys, const void *info, const void *alloc, void **dev);
static PFN_vkVoidFunction layer_DeviceProcAddr(void *dev, const char *n);

// HOOK answers a query for name with mine, keeping the next function in slot.
#define HOOK(name, mine, slot) \
	if (!strcmp(n, name)) { PFN_vkVoidFunction f = next_gdpa(dev, n); if (!f) return NULL; *(PFN_vkVoidFunction *)&slot = f; return (PFN_vkVoidFunction)mine; }

__attribute__((visibility("default"))) PFN_vkVoidFunction vkGetDeviceProcAddr(void *dev, const char *n);

__attribute__((visibility("default"))) PFN_vkVoidFunction vkGetDeviceProcAddr(void *dev, const char *n) {
	if (!strcmp(n, "vkGetDeviceProcAddr")) return (PFN_vkVoidFunction)vkGetDeviceProcAddr;
	PFN_vkVoidFunction f = layer_DeviceProcAddr(dev, n);
	return f ? f : next_gdpa(dev, n);
}

__attribute__((visibility("default"))) PFN_vkVoidFunction vkGetInstanceProcAddr(void *inst, const char *n) {
	if (!strcmp(n, "vkGetInstanceProcAddr")) return (PFN_vkVoidFunction)vkGetInstanceProcAddr;
	if (!strcmp(n, "vkCreateInstance")) return (PFN_vkVoidFunction)layer_CreateInstance;
	if (!strcmp(n, "vkCreateDevice")) return (PFN_vkVoidFunction)layer_CreateDevice;
	if (!strcmp(n, "vkGetDeviceProcAddr")) return (PFN_vkVoidFunction)vkGetDeviceProcAddr;
	return next_gipa ? next_gipa(inst, n) : NULL;
}
