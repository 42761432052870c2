/* Wine 8 lacks bcryptprimitives.dll, whose ProcessPrng Rust's std uses for randomness on
 * Windows (every Rust .exe then fails to start). This stand-in, built with MinGW-w64 by
 * scripts/windows.sh and copied into the Wine prefix only, implements it with RtlGenRandom
 * (advapi32's SystemFunction036), the system CSPRNG Rust used before ProcessPrng. It never
 * ships: real Windows has the DLL. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG n = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        length -= n;
    }
    return TRUE;
}
