/* bcryptprimitives.dll for Wine 8, which lacks it.
 *
 * Rust's standard library (1.78 and later) gets its random numbers from
 * bcryptprimitives.dll!ProcessPrng, which Windows 10+ has and Wine 8 does
 * not; without it every Rust program aborts at start under Wine. This DLL
 * forwards to BCryptGenRandom, which Wine implements. It is only ever put in
 * the test Wine prefix's system32 (scripts/wine-env.sh), never shipped.
 */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
