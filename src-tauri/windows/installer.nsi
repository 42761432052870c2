; The Voxseal installer for Windows: per user, no administrator rights. Built on Linux with
; Debian's makensis by `scripts/windows.sh installer` (docs/windows.md), which passes:
;   VERSION  the app's version (x.y.z)
;   BINDIR   the directory holding voxseal-desktop.exe (the app), its WebView2Loader.dll and
;            voxseal.exe (the CLI)
;   ICON     the app's .ico
;   OUTFILE  the installer to write
; Switches: /S installs (or uninstalls) silently; /D=DIR, last on the line, sets the directory.
; Uninstalling never deletes the data directory: it may hold sealed samples not yet uploaded.

; 64-bit, as the app: it refuses to start on 32-bit Windows, which the app does not run on.
Target amd64-unicode
ManifestDPIAware true
SetCompressor /SOLID lzma
RequestExecutionLevel user

!include MUI2.nsh
!include LogicLib.nsh
!include FileFunc.nsh

!define PRODUCT "Voxseal"
!define APP_EXE "voxseal-desktop.exe"
!define CLI_EXE "voxseal.exe"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Voxseal"
!define SCHEME_KEY "Software\Classes\voxseal"
; Where the app and the CLI keep their data (Tauri's app_local_data_dir, and the CLI's).
!define APP_DATA "$LOCALAPPDATA\com.voxseal.desktop"
!define CLI_DATA "$LOCALAPPDATA\voxseal"
!define WER_EXCLUDED_KEY "Software\Microsoft\Windows\Windows Error Reporting\ExcludedApplications"
; The Evergreen WebView2 Runtime's client id (Microsoft's documented detection key).
!define WEBVIEW2_KEY "Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}"

Name "${PRODUCT}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${PRODUCT}"
InstallDirRegKey HKCU "${UNINSTALL_KEY}" "InstallLocation"
BrandingText "${PRODUCT} ${VERSION}"

VIProductVersion "${VERSION}.0"
VIAddVersionKey "ProductName" "${PRODUCT}"
VIAddVersionKey "FileDescription" "${PRODUCT} installer"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "CompanyName" "Voxseal"
VIAddVersionKey "LegalCopyright" "Copyright Voxseal contributors"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${PRODUCT}"
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!insertmacro MUI_LANGUAGE "English"

; Stops with a message when the installed app is running: its files cannot be replaced then.
; A running executable cannot be opened for writing, which is what this tries.
!macro REFUSE_WHILE_RUNNING
    ${If} ${FileExists} "$INSTDIR\${APP_EXE}"
        ClearErrors
        FileOpen $0 "$INSTDIR\${APP_EXE}" a
        ${If} ${Errors}
            MessageBox MB_ICONSTOP "${PRODUCT} is running. Close it (Quit in its window, or end it in Task Manager), then run this again." /SD IDOK
            SetErrorLevel 2
            Quit
        ${EndIf}
        FileClose $0
    ${EndIf}
!macroend

; $0 := the number of sealed samples waiting in the outbox under data directory $1.
!macro COUNT_UNSENT
    StrCpy $0 0
    ClearErrors
    FindFirst $2 $3 "$1\outbox\*"
    ${DoUntil} ${Errors}
        ${If} ${FileExists} "$1\outbox\$3\manifest.json"
            IntOp $0 $0 + 1
        ${EndIf}
        FindNext $2 $3
    ${Loop}
    FindClose $2
!macroend

Section "Install"
    !insertmacro REFUSE_WHILE_RUNNING
    SetOutPath "$INSTDIR"
    File "${BINDIR}\${APP_EXE}"
    File "${BINDIR}\${CLI_EXE}"
    ; The WebView2 loader the app imports: a DLL for the GNU target (MSVC builds link it statically).
    !if /FileExists "${BINDIR}\WebView2Loader.dll"
        File "${BINDIR}\WebView2Loader.dll"
    !endif
    WriteUninstaller "$INSTDIR\uninstall.exe"

    ; voxseal:// enrollment links open the app, which takes the link as its argument.
    WriteRegStr HKCU "${SCHEME_KEY}" "" "URL:Voxseal enrollment link"
    WriteRegStr HKCU "${SCHEME_KEY}" "URL Protocol" ""
    WriteRegStr HKCU "${SCHEME_KEY}\DefaultIcon" "" '"$INSTDIR\${APP_EXE}",0'
    WriteRegStr HKCU "${SCHEME_KEY}\shell\open\command" "" '"$INSTDIR\${APP_EXE}" "%1"'

    ; The entry in Settings > Apps.
    WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT}"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "Voxseal"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" '"$INSTDIR\${APP_EXE}"'
    WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
    WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
    WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
    WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
    WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
    ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
    WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" $0

    CreateShortCut "$SMPROGRAMS\${PRODUCT}.lnk" "$INSTDIR\${APP_EXE}"

    ; The app's window needs the WebView2 Runtime (part of Windows 11 and of updated Windows 10).
    ; The installer does not download it: it says where to get it.
    ReadRegStr $0 HKLM "SOFTWARE\WOW6432Node\${WEBVIEW2_KEY}" "pv"
    ${If} $0 == ""
        ReadRegStr $0 HKCU "Software\${WEBVIEW2_KEY}" "pv"
    ${EndIf}
    ${If} $0 == ""
    ${OrIf} $0 == "0.0.0.0"
        DetailPrint "The Microsoft Edge WebView2 Runtime is not installed: the app's window needs it."
        MessageBox MB_ICONEXCLAMATION "${PRODUCT} is installed, but its window needs the Microsoft Edge WebView2 Runtime, which this computer does not have.$\r$\n$\r$\nInstall it from https://developer.microsoft.com/microsoft-edge/webview2/ (or ask your IT department), then start ${PRODUCT}." /SD IDOK
    ${EndIf}
SectionEnd

Section "Uninstall"
    !insertmacro REFUSE_WHILE_RUNNING
    Delete "$INSTDIR\${APP_EXE}"
    Delete "$INSTDIR\${CLI_EXE}"
    Delete "$INSTDIR\WebView2Loader.dll"
    Delete "$INSTDIR\uninstall.exe"
    RMDir "$INSTDIR"
    Delete "$SMPROGRAMS\${PRODUCT}.lnk"
    ; The scheme only if it still opens this installation (another one may have taken it over).
    ReadRegStr $0 HKCU "${SCHEME_KEY}\shell\open\command" ""
    ${If} $0 == '"$INSTDIR\${APP_EXE}" "%1"'
        DeleteRegKey HKCU "${SCHEME_KEY}"
    ${EndIf}
    DeleteRegKey HKCU "${UNINSTALL_KEY}"
    ; What the programs set at start (voxseal_core::hardening): no Windows Error Reporting for them.
    DeleteRegValue HKCU "${WER_EXCLUDED_KEY}" "${APP_EXE}"
    DeleteRegValue HKCU "${WER_EXCLUDED_KEY}" "${CLI_EXE}"

    ; The data directories stay: keys, the audit log, and sealed samples not yet uploaded.
    StrCpy $1 "${APP_DATA}"
    !insertmacro COUNT_UNSENT
    StrCpy $4 $0
    StrCpy $1 "${CLI_DATA}"
    !insertmacro COUNT_UNSENT
    IntOp $4 $4 + $0
    DetailPrint "Kept ${APP_DATA} and ${CLI_DATA}: $4 sealed sample(s) not yet uploaded."
    ${If} $4 > 0
        MessageBox MB_ICONINFORMATION "$4 sealed sample(s) have not been uploaded yet. They are kept, encrypted, in ${APP_DATA}: install ${PRODUCT} again to upload them." /SD IDOK
    ${EndIf}
SectionEnd
