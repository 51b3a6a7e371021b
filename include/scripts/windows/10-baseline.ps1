# Baseline for every Windows golden image: a marker the smoke test checks, and TLS 1.0 disabled.
$ErrorActionPreference = 'Stop'
New-Item -ItemType Directory -Force -Path 'C:\GoldenImage' | Out-Null
Set-Content -Path 'C:\GoldenImage\release.txt' -Value "image=$env:IMAGE_NAME"
New-Item -Path 'HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.0\Server' -Force | Out-Null
Set-ItemProperty -Path 'HKLM:\SYSTEM\CurrentControlSet\Control\SecurityProviders\SCHANNEL\Protocols\TLS 1.0\Server' -Name Enabled -Value 0
