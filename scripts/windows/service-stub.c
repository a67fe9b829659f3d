/* A stand-in for lectern-agent.exe in scripts/test-windows-msi.sh: the MSI
 * starts its service on install, so the packaged program must be a real
 * Windows service. `service-stub.exe service` runs as one (reports RUNNING,
 * stops on STOP), writing its command line to C:\lectern-service-stub.txt so
 * the test can check the arguments the MSI registered. Built with mingw. */
#include <windows.h>
#include <stdio.h>

static SERVICE_STATUS_HANDLE handle;
static SERVICE_STATUS status;
static HANDLE stop_event;

static void report(DWORD state)
{
    status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    status.dwCurrentState = state;
    status.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP : 0;
    SetServiceStatus(handle, &status);
}

static DWORD WINAPI control(DWORD code, DWORD type, void *data, void *ctx)
{
    (void)type; (void)data; (void)ctx;
    if (code == SERVICE_CONTROL_STOP) {
        report(SERVICE_STOP_PENDING);
        SetEvent(stop_event);
    }
    return NO_ERROR;
}

static void WINAPI service_main(DWORD argc, wchar_t **argv)
{
    (void)argc; (void)argv;
    handle = RegisterServiceCtrlHandlerExW(L"LecternAgent", control, NULL);
    if (!handle) return;
    stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);
    report(SERVICE_RUNNING);
    WaitForSingleObject(stop_event, INFINITE);
    report(SERVICE_STOPPED);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "service") == 0) {
        FILE *f = fopen("C:\\lectern-service-stub.txt", "w");
        if (f) {
            fprintf(f, "%s\n", GetCommandLineA());
            fclose(f);
        }
        SERVICE_TABLE_ENTRYW table[] = {{L"LecternAgent", service_main}, {NULL, NULL}};
        if (StartServiceCtrlDispatcherW(table)) return 0;
        f = fopen("C:\\lectern-service-stub.txt", "a");
        if (f) {
            fprintf(f, "StartServiceCtrlDispatcher failed: %lu\n", GetLastError());
            fclose(f);
        }
        return 1;
    }
    printf("service-stub: run as `service-stub.exe service` by the service manager\n");
    return 0;
}
