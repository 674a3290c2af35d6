#ifndef PARLEY_EXPORT_H
#define PARLEY_EXPORT_H
/* Everything is hidden by default (-fvisibility=hidden); only PARLEY_EXPORT symbols form the ABI. */
#if defined(__GNUC__) || defined(__clang__)
#define PARLEY_EXPORT __attribute__((visibility("default")))
#else
#define PARLEY_EXPORT
#endif
#endif
