// A Vulkan layer that reports what the driver compiled each compute
// pipeline into: it enables VK_KHR_pipeline_executable_properties on every
// device, asks for the statistics of every compute pipeline, and writes
// one line per pipeline executable to the file named by RWKVKIT_VKSTATS
// (standard error without it): the SPIR-V module's number in order of
// creation, its entry point, its workgroup size, then every statistic the
// driver reports, as the driver names them (NVIDIA's: registers, binary
// size, stack, local memory, shared memory). With RWKVKIT_VKSTATS_SPIRV
// naming a directory, each module's SPIR-V is written there as
// module-N.spv, so that a line can be matched to its source (spirv-dis).
// The kernels are compiled as they are without the layer; it only adds the
// flag that makes the driver keep their statistics.
//
// The types are declared here with the layouts of the Vulkan headers
// (vulkan_core.h), which need not be installed.
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>

#include "layer.h"

enum {
	ST_FEATURES = 1000269000, // VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR
	ST_PIPELINE_INFO = 1000269001,
	ST_EXECUTABLE_PROPERTIES = 1000269002,
	ST_EXECUTABLE_INFO = 1000269003,
	ST_STATISTIC = 1000269004,
};
enum { CAPTURE_STATISTICS = 0x40 }; // VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR
enum { STAT_BOOL32 = 0, STAT_INT64 = 1, STAT_UINT64 = 2, STAT_FLOAT64 = 3 };
#define EXTENSION "VK_KHR_pipeline_executable_properties"

typedef struct {
	int32_t sType; const void *pNext; uint32_t flags;
	uint32_t queueCreateInfoCount; const void *pQueueCreateInfos;
	uint32_t enabledLayerCount; const char *const *ppEnabledLayerNames;
	uint32_t enabledExtensionCount; const char *const *ppEnabledExtensionNames;
	const void *pEnabledFeatures;
} deviceInfo;
typedef struct { int32_t sType; const void *pNext; uint32_t pipelineExecutableInfo; } features;
typedef struct { int32_t sType; const void *pNext; uint32_t flags; size_t codeSize; const uint32_t *pCode; } moduleInfo;
typedef struct {
	int32_t sType; const void *pNext; uint32_t flags; uint32_t stage;
	uint64_t module; const char *pName; const void *pSpecializationInfo;
} stageInfo;
typedef struct {
	int32_t sType; const void *pNext; uint32_t flags; stageInfo stage;
	uint64_t layout; uint64_t basePipelineHandle; int32_t basePipelineIndex;
} computeInfo;
typedef struct { int32_t sType; const void *pNext; uint64_t pipeline; } pipelineInfo;
typedef struct { int32_t sType; void *pNext; uint32_t stages; char name[256]; char description[256]; uint32_t subgroupSize; } executable;
typedef struct { int32_t sType; const void *pNext; uint64_t pipeline; uint32_t executableIndex; } executableInfo;
typedef struct {
	int32_t sType; void *pNext; char name[256]; char description[256]; int32_t format;
	union { uint32_t b32; int64_t i64; uint64_t u64; double f64; } value;
} statistic;

typedef VkResult (*PFN_createModule)(void *, const moduleInfo *, const void *, uint64_t *);
typedef VkResult (*PFN_createCompute)(void *, uint64_t, uint32_t, const computeInfo *, const void *, uint64_t *);
typedef VkResult (*PFN_executables)(void *, const pipelineInfo *, uint32_t *, executable *);
typedef VkResult (*PFN_statistics)(void *, const executableInfo *, uint32_t *, statistic *);

static PFN_createModule n_createModule;
static PFN_createCompute n_createCompute;
static PFN_executables n_executables;
static PFN_statistics n_statistics;
static int looked_up;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

// The modules seen so far, numbered in order: handle, workgroup size.
enum { MAXMOD = 4096 };
static struct { uint64_t h; uint32_t size[3]; } mods[MAXMOD];
static int nmods;

static FILE *out(void) {
	static FILE *f;
	if (!f) {
		const char *p = getenv("RWKVKIT_VKSTATS");
		f = p ? fopen(p, "a") : NULL;
		if (!f) f = stderr;
	}
	return f;
}

// say writes a line; a test process may end without flushing C's buffers.
static void say(const char *s) {
	fputs(s, out());
	fflush(out());
}

// layer_CreateDevice adds the extension, and its feature where the driver
// takes it, to the device's.
static VkResult layer_CreateDevice(void *phys, const void *in, const void *alloc, void **dev) {
	PFN_createDevice create = device_link(in);
	if (!create) return VK_ERROR_INITIALIZATION_FAILED;
	const deviceInfo *info = in;
	deviceInfo ci = *info;
	const char **ext = calloc(info->enabledExtensionCount + 1, sizeof *ext);
	int have = 0;
	for (uint32_t i = 0; i < info->enabledExtensionCount; i++) {
		ext[i] = info->ppEnabledExtensionNames[i];
		if (!strcmp(ext[i], EXTENSION)) have = 1;
	}
	if (!have) ext[ci.enabledExtensionCount++] = EXTENSION;
	ci.ppEnabledExtensionNames = ext;
	features feat = {.sType = ST_FEATURES, .pNext = ci.pNext, .pipelineExecutableInfo = 1};
	ci.pNext = &feat;
	VkResult r = create(phys, &ci, alloc, dev);
	if (r != VK_SUCCESS) { // Mesa 22's lavapipe lists the extension, not the feature
		ci.pNext = info->pNext;
		r = create(phys, &ci, alloc, dev);
	}
	if (r != VK_SUCCESS) {
		char s[160];
		snprintf(s, sizeof s, "stats layer: the device refused %s (%d); without statistics\n", EXTENSION, r);
		say(s);
		r = create(phys, info, alloc, dev);
	}
	free(ext);
	return r;
}

// localSize finds the LocalSize execution mode in SPIR-V words.
static void localSize(const uint32_t *w, size_t n, uint32_t size[3]) {
	for (size_t i = 5; i < n;) {
		uint32_t len = w[i] >> 16, op = w[i] & 0xffff;
		if (len == 0) break;
		if (op == 16 && len >= 6 && i + 5 < n && w[i + 2] == 17) { // OpExecutionMode LocalSize
			size[0] = w[i + 3], size[1] = w[i + 4], size[2] = w[i + 5];
			return;
		}
		i += len;
	}
}

static VkResult l_createModule(void *d, const moduleInfo *info, const void *a, uint64_t *m) {
	VkResult r = n_createModule(d, info, a, m);
	if (r != VK_SUCCESS) return r;
	pthread_mutex_lock(&mu);
	int n = nmods;
	if (nmods < MAXMOD) {
		mods[n].h = *m;
		localSize(info->pCode, info->codeSize / 4, mods[n].size);
		nmods++;
	}
	pthread_mutex_unlock(&mu);
	const char *dir = getenv("RWKVKIT_VKSTATS_SPIRV");
	if (dir) {
		char path[4096];
		snprintf(path, sizeof path, "%s/module-%d.spv", dir, n);
		FILE *f = fopen(path, "wb");
		if (f) {
			fwrite(info->pCode, 1, info->codeSize, f);
			fclose(f);
		}
	}
	return r;
}

// report writes the statistics of pipeline p's executables.
static void report(void *d, uint64_t p, const stageInfo *stage) {
	int n = -1;
	uint32_t size[3] = {0, 0, 0};
	pthread_mutex_lock(&mu);
	for (int i = nmods - 1; i >= 0; i--) {
		if (mods[i].h == stage->module) {
			n = i;
			memcpy(size, mods[i].size, sizeof size);
			break;
		}
	}
	pthread_mutex_unlock(&mu);
	pipelineInfo pi = {.sType = ST_PIPELINE_INFO, .pipeline = p};
	executable props[8];
	uint32_t ne = 8;
	for (uint32_t i = 0; i < ne; i++) props[i] = (executable){.sType = ST_EXECUTABLE_PROPERTIES};
	VkResult r = n_executables(d, &pi, &ne, props);
	if (r < 0) return;
	for (uint32_t e = 0; e < ne; e++) {
		executableInfo ei = {.sType = ST_EXECUTABLE_INFO, .pipeline = p, .executableIndex = e};
		uint32_t ns = 0;
		if (n_statistics(d, &ei, &ns, NULL) != VK_SUCCESS) continue;
		statistic *st = calloc(ns ? ns : 1, sizeof *st);
		for (uint32_t i = 0; i < ns; i++) st[i].sType = ST_STATISTIC;
		if (n_statistics(d, &ei, &ns, st) < 0) ns = 0;
		size_t cap = 256 + ns * 600, len = 0;
		char *s = malloc(cap);
		len += snprintf(s + len, cap - len, "module %d %s %ux%ux%u [%.*s]", n, stage->pName, size[0], size[1], size[2], 255, props[e].name);
		for (uint32_t i = 0; i < ns; i++) {
			const char *name = st[i].name;
			switch (st[i].format) {
			case STAT_BOOL32: len += snprintf(s + len, cap - len, " | %.255s=%u", name, st[i].value.b32); break;
			case STAT_INT64: len += snprintf(s + len, cap - len, " | %.255s=%lld", name, (long long)st[i].value.i64); break;
			case STAT_UINT64: len += snprintf(s + len, cap - len, " | %.255s=%llu", name, (unsigned long long)st[i].value.u64); break;
			default: len += snprintf(s + len, cap - len, " | %.255s=%g", name, st[i].value.f64);
			}
		}
		snprintf(s + len, cap - len, "\n");
		pthread_mutex_lock(&mu);
		say(s);
		pthread_mutex_unlock(&mu);
		free(s);
		free(st);
	}
}

static VkResult l_createCompute(void *d, uint64_t cache, uint32_t n, const computeInfo *infos, const void *a, uint64_t *ps) {
	pthread_mutex_lock(&mu);
	if (!looked_up) {
		looked_up = 1;
		n_executables = (PFN_executables)next_gdpa(d, "vkGetPipelineExecutablePropertiesKHR");
		n_statistics = (PFN_statistics)next_gdpa(d, "vkGetPipelineExecutableStatisticsKHR");
		if (!n_executables || !n_statistics) say("stats layer: the device has no vkGetPipelineExecutableStatisticsKHR\n");
	}
	pthread_mutex_unlock(&mu);
	if (!n_executables || !n_statistics) return n_createCompute(d, cache, n, infos, a, ps);
	computeInfo *ci = calloc(n, sizeof *ci);
	for (uint32_t i = 0; i < n; i++) {
		ci[i] = infos[i];
		ci[i].flags |= CAPTURE_STATISTICS;
	}
	VkResult r = n_createCompute(d, cache, n, ci, a, ps);
	if (r == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++) report(d, ps[i], &ci[i].stage);
	free(ci);
	return r;
}

static PFN_vkVoidFunction layer_DeviceProcAddr(void *dev, const char *n) {
	HOOK("vkCreateShaderModule", l_createModule, n_createModule)
	HOOK("vkCreateComputePipelines", l_createCompute, n_createCompute)
	return NULL;
}
