// A Vulkan layer for tests: once the file named by RWKVKIT_LOSE_FILE
// exists, every call that reports a lost device in Vulkan (queue
// submission, fence and semaphore waits and queries, idle waits) returns
// VK_ERROR_DEVICE_LOST, as a driver does after a GPU reset; once the file
// named by RWKVKIT_OOM_FILE exists, every memory allocation returns
// VK_ERROR_OUT_OF_DEVICE_MEMORY, as on a full GPU. The types are
// declared here with the layouts of the Vulkan loader interface
// (vk_layer.h), whose headers need not be installed.
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

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

// The next layer's (or the driver's) entry points. One instance and one
// device at a time are enough for the tests.
static PFN_gipa next_gipa;
static PFN_gdpa next_gdpa;
static void *the_instance;

// triggered reports whether the file named by env exists, or existed at
// an earlier call.
static int triggered(int *flag, const char *env) {
	if (!*flag) {
		const char *p = getenv(env);
		if (p && access(p, F_OK) == 0) *flag = 1;
	}
	return *flag;
}

static int lost_flag, oom_flag;
static int lost(void) { return triggered(&lost_flag, "RWKVKIT_LOSE_FILE"); }
static int oom(void) { return triggered(&oom_flag, "RWKVKIT_OOM_FILE"); }

typedef VkResult (*PFN_createInstance)(const void *, const void *, void **);
typedef VkResult (*PFN_createDevice)(void *, const void *, const void *, void **);

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

static VkResult layer_CreateDevice(void *phys, const void *info, const void *alloc, void **dev) {
	dcreate *c = (dcreate *)((const base *)info)->pNext;
	while (c && !(c->sType == LOADER_DEVICE_CREATE_INFO && c->function == LAYER_LINK_INFO)) c = (dcreate *)c->pNext;
	if (!c) return VK_ERROR_INITIALIZATION_FAILED;
	PFN_gipa gipa = c->u.pLayerInfo->nextGIPA;
	next_gdpa = c->u.pLayerInfo->nextGDPA;
	c->u.pLayerInfo = c->u.pLayerInfo->pNext;
	PFN_createDevice create = (PFN_createDevice)gipa(the_instance, "vkCreateDevice");
	return create(phys, info, alloc, dev);
}

typedef VkResult (*PFN_queueSubmit)(void *, uint32_t, const void *, uint64_t);
typedef VkResult (*PFN_semValue)(void *, uint64_t, uint64_t *);
typedef VkResult (*PFN_waitSems)(void *, const void *, uint64_t);
typedef VkResult (*PFN_fenceStatus)(void *, uint64_t);
typedef VkResult (*PFN_waitFences)(void *, uint32_t, const uint64_t *, uint32_t, uint64_t);
typedef VkResult (*PFN_idle)(void *);

static PFN_queueSubmit n_queueSubmit;
static PFN_semValue n_semValue, n_semValueKHR;
static PFN_waitSems n_waitSems, n_waitSemsKHR;
static PFN_fenceStatus n_fenceStatus;
static PFN_waitFences n_waitFences;
static PFN_idle n_deviceIdle, n_queueIdle;
typedef VkResult (*PFN_allocate)(void *, const void *, const void *, uint64_t *);
static PFN_allocate n_allocate;

static VkResult l_queueSubmit(void *q, uint32_t n, const void *s, uint64_t f) { return lost() ? VK_ERROR_DEVICE_LOST : n_queueSubmit(q, n, s, f); }
static VkResult l_semValue(void *d, uint64_t s, uint64_t *v) { return lost() ? VK_ERROR_DEVICE_LOST : n_semValue(d, s, v); }
static VkResult l_semValueKHR(void *d, uint64_t s, uint64_t *v) { return lost() ? VK_ERROR_DEVICE_LOST : n_semValueKHR(d, s, v); }
static VkResult l_waitSems(void *d, const void *i, uint64_t t) { return lost() ? VK_ERROR_DEVICE_LOST : n_waitSems(d, i, t); }
static VkResult l_waitSemsKHR(void *d, const void *i, uint64_t t) { return lost() ? VK_ERROR_DEVICE_LOST : n_waitSemsKHR(d, i, t); }
static VkResult l_fenceStatus(void *d, uint64_t f) { return lost() ? VK_ERROR_DEVICE_LOST : n_fenceStatus(d, f); }
static VkResult l_waitFences(void *d, uint32_t n, const uint64_t *f, uint32_t all, uint64_t t) { return lost() ? VK_ERROR_DEVICE_LOST : n_waitFences(d, n, f, all, t); }
static VkResult l_deviceIdle(void *d) { return lost() ? VK_ERROR_DEVICE_LOST : n_deviceIdle(d); }
static VkResult l_queueIdle(void *q) { return lost() ? VK_ERROR_DEVICE_LOST : n_queueIdle(q); }
static VkResult l_allocate(void *d, const void *i, const void *a, uint64_t *m) { return oom() ? VK_ERROR_OUT_OF_DEVICE_MEMORY : n_allocate(d, i, a, m); }

// HOOK answers a query for name with mine, keeping the next function in slot.
#define HOOK(name, mine, slot) \
	if (!strcmp(n, name)) { PFN_vkVoidFunction f = next_gdpa(dev, n); if (!f) return NULL; *(PFN_vkVoidFunction *)&slot = f; return (PFN_vkVoidFunction)mine; }

__attribute__((visibility("default"))) PFN_vkVoidFunction vkGetDeviceProcAddr(void *dev, const char *n);

__attribute__((visibility("default"))) PFN_vkVoidFunction vkGetDeviceProcAddr(void *dev, const char *n) {
	if (!strcmp(n, "vkGetDeviceProcAddr")) return (PFN_vkVoidFunction)vkGetDeviceProcAddr;
	HOOK("vkQueueSubmit", l_queueSubmit, n_queueSubmit)
	HOOK("vkGetSemaphoreCounterValue", l_semValue, n_semValue)
	HOOK("vkGetSemaphoreCounterValueKHR", l_semValueKHR, n_semValueKHR)
	HOOK("vkWaitSemaphores", l_waitSems, n_waitSems)
	HOOK("vkWaitSemaphoresKHR", l_waitSemsKHR, n_waitSemsKHR)
	HOOK("vkGetFenceStatus", l_fenceStatus, n_fenceStatus)
	HOOK("vkWaitForFences", l_waitFences, n_waitFences)
	HOOK("vkDeviceWaitIdle", l_deviceIdle, n_deviceIdle)
	HOOK("vkQueueWaitIdle", l_queueIdle, n_queueIdle)
	HOOK("vkAllocateMemory", l_allocate, n_allocate)
	return next_gdpa(dev, n);
}

__attribute__((visibility("default"))) PFN_vkVoidFunction vkGetInstanceProcAddr(void *inst, const char *n) {
	if (!strcmp(n, "vkGetInstanceProcAddr")) return (PFN_vkVoidFunction)vkGetInstanceProcAddr;
	if (!strcmp(n, "vkCreateInstance")) return (PFN_vkVoidFunction)layer_CreateInstance;
	if (!strcmp(n, "vkCreateDevice")) return (PFN_vkVoidFunction)layer_CreateDevice;
	if (!strcmp(n, "vkGetDeviceProcAddr")) return (PFN_vkVoidFunction)vkGetDeviceProcAddr;
	return next_gipa ? next_gipa(inst, n) : NULL;
}
