# The microvm-tui lab's flake. It has NO inputs (no nixpkgs offline): every derivation is built by
# a static busybox copied next to this file, and the runners call the host's /usr/bin tools.
# What it produces mirrors microvm.nix: `nixosConfigurations.NAME.config.microvm.declaredRunner` is
# a package `microvm-qemu-NAME` in the layout of microvm.nix's lib/runner.nix, whose microvm-run
# carries qemu arguments shaped like lib/runners/qemu.nix. The VMs are described in ./vms.json,
# written by tui/lab at `up` time; the guest kernel and initrd are generated there too.
{
  description = "microvm-tui lab host";

  outputs = { self }:
    let
      system = "x86_64-linux";
      lab = builtins.fromJSON (builtins.readFile ./vms.json);
      host = lab.host;

      # Content-addressed copies, so that a change of vms.json does not change every runner.
      tools = builtins.path { path = ./tools; name = "lab-tools"; };
      guestFiles = builtins.path { path = ./guest; name = "lab-guest"; };

      # --- the few nixpkgs.lib functions we need ---------------------------------------------
      concatMapStrings = f: xs: builtins.concatStringsSep "" (map f xs);
      concatMapStringsSep = sep: f: xs: builtins.concatStringsSep sep (map f xs);
      optional = c: x: if c then [ x ] else [ ];
      optionals = c: xs: if c then xs else [ ];
      optionalString = c: s: if c then s else "";
      optionalAttrs = c: a: if c then a else { };
      escapeShellArg = arg:
        let s = toString arg;
        in if builtins.match "[[:alnum:],._+:@%/-]+" s == null
           then "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] s}'"
           else s;
      escapeShellArgs = concatMapStringsSep " " escapeShellArg;
      boolToString = b: if b then "true" else "false";
      lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" ];
      enumerate = xs: builtins.genList (i: (builtins.elemAt xs i) // { index = i; }) (builtins.length xs);

      # runCommand, with a busybox sh as the only tool.
      runCommand = name: env: script: derivation ({
        inherit name system;
        builder = "${tools}/busybox";
        args = [ "sh" "-c" ''
          set -e
          bb=${tools}/busybox
          $bb mkdir -p "$TMPDIR/bin"
          $bb --install -s "$TMPDIR/bin"
          export PATH="$TMPDIR/bin"
          ${script}
        '' ];
      } // env);

      # writeShellScript: the same shape as nixpkgs' (a shebang line, then the text).
      writeShellScript = name: text: runCommand name {
        text = ''
          #!${host.bash}
          ${text}
        '';
        passAsFile = [ "text" ];
      } ''
        cp "$textPath" "$out"
        chmod 555 "$out"
      '';

      kernel = runCommand "linux-${lab.kernelVersion}" { } ''
        mkdir -p "$out"
        cp ${guestFiles}/bzImage "$out/bzImage"
      '';

      initialRamdisk = runCommand "initrd-linux-${lab.kernelVersion}" { } ''
        mkdir -p "$out"
        cp ${guestFiles}/initrd "$out/initrd"
      '';

      # A small stand-in for a NixOS system.build.toplevel.
      mkToplevel = name: c: runCommand "nixos-system-${c.hostName}-${lab.nixosVersion}" {
        configuration = builtins.toJSON c;
        passAsFile = [ "configuration" ];
      } ''
        mkdir -p "$out"
        ln -s ${kernel}/bzImage "$out/kernel"
        ln -s ${initialRamdisk}/initrd "$out/initrd"
        echo -n ${escapeShellArg (toString c.kernelParams)} > "$out/kernel-params"
        echo -n ${escapeShellArg lab.nixosVersion} > "$out/nixos-version"
        cp "$configurationPath" "$out/microvm-configuration.json"
      '';

      # --- lib/macvtap.nix: qemu gets macvtaps as file descriptors opened by microvm-run --------
      makeMacvtap = c:
        let
          queueCount = if c.vcpu > 1 then c.vcpu else 1;
          macvtaps = builtins.filter (i: i.type == "macvtap") c.interfaces;
          withFds = builtins.concatLists (builtins.genList (n:
            builtins.genList (q: (builtins.elemAt macvtaps n) // { fd = 3 + n * queueCount + q; }) queueCount
          ) (builtins.length macvtaps));
        in {
          openMacvtapFds = ''
            # Open macvtap interface file descriptors
          '' + concatMapStrings (i: ''
            exec ${toString i.fd}<>/dev/tap$(< /sys/class/net/${i.id}/ifindex)
          '') withFds;
          macvtapFds = builtins.foldl' (acc: i: acc // { ${i.id} = (acc.${i.id} or [ ]) ++ [ i.fd ]; }) { } withFds;
        };

      # --- lib/runners/qemu.nix, reduced to what the lab uses ----------------------------------
      qemuRunner = c: toplevel:
        let
          inherit (c) hostName vcpu mem balloon shares interfaces socket volumes;
          machine = c.qemu.machine;
          requirePci = machine != "microvm" || shares != [ ];
          devType = if requirePci then "pci" else "device";
          machineConfig = builtins.concatStringsSep "," (
            [ machine ] ++ map (n: "${n}=${c.qemu.machineOpts.${n}}") (builtins.attrNames c.qemu.machineOpts)
          );
          kernelPath = if c.kernelPath != null then c.kernelPath else "${kernel}/bzImage";
          initrdPath = "${initialRamdisk}/initrd";
          kernelConsole = if c.qemu.serialConsole then "earlyprintk=ttyS0 console=ttyS0" else "";
          tapMultiQueue = vcpu > 1;
          aioEngine = "io_uring";
          lettered = builtins.genList (i: (builtins.elemAt volumes i) // { letter = builtins.elemAt lowerChars i; }) (builtins.length volumes);
          writeQmp = data: ''
            echo '${builtins.toJSON data}'
          '';
          key = k: { type = "key"; data = { down = true; key = { type = "qcode"; data = k; }; }; };
          inherit (makeMacvtap c) macvtapFds;
        in {
          inherit tapMultiQueue;
          command = escapeShellArgs ([
            host.qemu
            "-name" hostName
            "-M" machineConfig
            "-m" "${toString mem}M"
            "-smp" (toString vcpu)
            "-nodefaults" "-no-user-config"
            "-no-reboot"
            "-kernel" kernelPath
            "-initrd" initrdPath
            "-chardev" "stdio,id=stdio,signal=off"
            "-device" "virtio-rng-${devType}"
          ])
          # upstream puts the (here empty) vfio-pci/usb-host arguments between two spaces
          + " " + " " + escapeShellArgs (
            optionals c.qemu.serialConsole [ "-serial" "chardev:stdio" ]
            ++ (if c.cpu == null then [ "-enable-kvm" "-cpu" "host,+x2apic,-sgx" ] else [ "-cpu" c.cpu ])
            # upstream adds `-device i8042` on every x86_64 machine: the `microvm` machine has no
            # keyboard controller. q35 has one built in, and a second one (tried) swallows the
            # keys, so microvm-shutdown's Ctrl-Alt-Del never reached the guest: not on q35.
            ++ optionals (machine == "microvm") [ "-device" "i8042" ]
            ++ [ "-append" "${kernelConsole} reboot=t panic=-1 ${toString c.kernelParams}" ]
            ++ [ "-nographic" ]
            ++ optionals (socket != null) [ "-qmp" "unix:${socket},server,nowait" ]
            ++ optionals balloon [
              "-device" ("virtio-balloon-${devType},free-page-reporting=on,id=balloon0" + optionalString c.deflateOnOOM ",deflate-on-oom=on")
            ]
            ++ builtins.concatMap (v: [
              "-drive" "id=vd${v.letter},format=raw,file=${v.image},if=none,aio=${aioEngine},discard=unmap${optionalString v.direct ",cache=none"},read-only=${if v.readOnly then "on" else "off"}"
              "-device" "virtio-blk-${devType},drive=vd${v.letter}${optionalString (v.serial != null) ",serial=${v.serial}"}"
            ]) lettered
            ++ optionals (shares != [ ]) (
              [ "-numa" "node,memdev=mem" "-object" "memory-backend-memfd,id=mem,size=${toString mem}M,share=on" ]
              ++ builtins.concatMap (s: [
                "-fsdev" "local,id=fs${toString s.index},path=${s.source},security_model=${s.securityModel},readonly=${boolToString s.readOnly}"
                "-device" "virtio-9p-${devType},fsdev=fs${toString s.index},mount_tag=${s.tag}"
              ]) (enumerate shares)
            )
            ++ builtins.concatMap (i: [
              "-netdev" (builtins.concatStringsSep "," (
                [ "tap" "id=${i.id}" ]
                ++ optionals (i.type == "tap") [ "ifname=${i.id}" "script=no" "downscript=no" ]
                ++ optional (i.type == "macvtap") (
                  let fds = macvtapFds.${i.id}; in
                  if builtins.length fds == 1
                  then "fd=${toString (builtins.head fds)}"
                  else "fds=${concatMapStringsSep ":" toString fds}")
                ++ optional (i.type == "tap" && tapMultiQueue) "queues=${toString vcpu}"
              ))
              "-device" "virtio-net-${devType},netdev=${i.id},mac=${i.mac}${optionalString requirePci ",romfile="}${optionalString (tapMultiQueue && requirePci && (i.type == "tap" || i.type == "macvtap")) ",mq=on,vectors=${toString (2 * vcpu + 2)}"}"
            ]) interfaces
            ++ c.qemu.extraArgs
          );
          canShutdown = socket != null;
          shutdownCommand = ''
            # Exit gracefully if QEMU is already gone (e.g., killed by machinectl)
            if [ ! -S ${socket} ]; then
              exit 0
            fi

            (
              ${writeQmp { execute = "qmp_capabilities"; }}
              ${writeQmp { execute = "input-send-event"; arguments.events = map key [ "ctrl" "alt" "delete" ]; }}
               # wait for exit
              cat
            ) | \
            ${host.socat} STDIO UNIX:${socket},shut-none
          '';
          setBalloonScript = ''
            VALUE=$(( $SIZE * 1024 * 1024 ))
            SIZE=$( (
              ${writeQmp { execute = "qmp_capabilities"; }}
              ${writeQmp { execute = "balloon"; arguments.value = 987; }}
            ) | sed -e s/987/$VALUE/ | \
              ${host.socat} STDIO UNIX:${socket},shut-none | \
              tail -n 1 | \
              ${host.jq} -r .data.actual \
            )
            echo $(( $SIZE / 1024 / 1024 ))
          '';
        };

      # nixos-modules/microvm/interfaces.nix (no `user microvm`: the lab runs as root).
      tapScripts = c: tapMultiQueue:
        let
          taps = builtins.filter (i: i.type == "tap") c.interfaces;
          macvtaps = builtins.filter (i: i.type == "macvtap") c.interfaces;
          flags = builtins.concatStringsSep " " ([ "vnet_hdr" ] ++ optional tapMultiQueue "multi_queue");
        in optionalAttrs (macvtaps != [ ]) {
          # Lab-only deviation: an explicit `index`, because the character device is named
          # /dev/tapIFINDEX in the machine-wide devtmpfs and two labs' namespaces would otherwise
          # hand out the same ifindex. No `chown microvm:kvm`: the lab runs as root.
          macvtap-up = ''
            set -eou pipefail
          '' + concatMapStrings (i: ''
            if [ -e /sys/class/net/${i.id} ]; then
              ${host.ip} link delete '${i.id}'
            fi
            ${host.ip} link add link '${i.macvtap.link}' name '${i.id}' index ${toString i.macvtap.index} address '${i.mac}' type macvtap mode '${i.macvtap.mode}'
            ${host.ip} link set '${i.id}' allmulticast on
            if [ -f "/proc/sys/net/ipv6/conf/${i.id}/disable_ipv6" ]; then
              echo 1 > "/proc/sys/net/ipv6/conf/${i.id}/disable_ipv6"
            fi
            ${host.ip} link set '${i.id}' up
          '') macvtaps;
          macvtap-down = ''
            set -ou pipefail
          '' + concatMapStrings (i: ''
            ${host.ip} link delete '${i.id}'
          '') macvtaps;
        } // optionalAttrs (taps != [ ]) {
          tap-up = ''
            set -eou pipefail
          '' + concatMapStrings (i: ''
            if [ -e /sys/class/net/${i.id} ]; then
              ${host.ip} link delete '${i.id}'
            fi

            ${host.ip} tuntap add name '${i.id}' mode tap ${flags}
            ${host.ip} link set '${i.id}' up
          '') taps;
          tap-down = ''
            set -ou pipefail
          '' + concatMapStrings (i: ''
            ${host.ip} link delete '${i.id}'
          '') taps;
        };

      # lib/volumes.nix
      createVolumesScript = volumes: optionalString (volumes != [ ]) (''
        PATH=$PATH:${host.extraPath}
      '' + concatMapStringsSep "\n" (v: optionalString v.autoCreate ''
        if [ ! -e '${v.image}' ]; then
          touch '${v.image}'
          # Mark NOCOW
          chattr +C '${v.image}' || true
          truncate -s ${toString v.size}M '${v.image}'
          mkfs.${v.fsType} ${optionalString (v.label != null) "-L '${v.label}'"}   '${v.image}'
        fi
      '') volumes);

      # --- lib/runner.nix ------------------------------------------------------------------------
      mkRunner = name: c:
        let
          toplevel = toplevels.${name};
          hv = qemuRunner c toplevel;
          execArg = ''-a "microvm@${c.hostName}"'';
          binScripts = {
            microvm-run = ''
              set -eou pipefail
              ${c.preStart}
              ${createVolumesScript c.volumes}
              ${(makeMacvtap c).openMacvtapFds}
              runtime_args=

              exec ${execArg} ${hv.command} ''${runtime_args:-}
            '';
          }
          // optionalAttrs hv.canShutdown { microvm-shutdown = hv.shutdownCommand; }
          // optionalAttrs (c.balloon && c.socket != null) {
            microvm-balloon = ''
              set -e

              if [ -z "$1" ]; then
                echo "Usage: $0 <balloon-size-mb>"
                exit 1
              fi

              SIZE=$1
              ${hv.setBalloonScript}
            '';
          }
          // tapScripts c hv.tapMultiQueue;
          scriptPkgs = builtins.mapAttrs (s: text: writeShellScript "microvm-${c.hostName}-${s}" text) binScripts;
          taps = builtins.filter (i: i.type == "tap") c.interfaces;
        in runCommand "microvm-${c.hypervisor}-${c.hostName}" { } ''
          mkdir -p $out/bin
          ${concatMapStrings (s: ''
            ln -s ${scriptPkgs.${s}} $out/bin/${s}
          '') (builtins.attrNames scriptPkgs)}
          mkdir -p $out/share/microvm
          ln -s ${toplevel} $out/share/microvm/system

          echo vnet_hdr > $out/share/microvm/tap-flags
          ${optionalString hv.tapMultiQueue ''
            echo multi_queue >> $out/share/microvm/tap-flags
          ''}
          ${concatMapStrings (i: ''
            echo ${escapeShellArg i.id} >> $out/share/microvm/tap-interfaces
          '') taps}
          ${concatMapStrings (i: ''
            echo ${escapeShellArg "${i.id} ${i.mac} ${i.macvtap.link} ${i.macvtap.mode}"} >> $out/share/microvm/macvtap-interfaces
          '') (builtins.filter (i: i.type == "macvtap") c.interfaces)}
          echo ${escapeShellArg c.hypervisor} > $out/share/microvm/hypervisor
        '';

      toplevels = builtins.mapAttrs mkToplevel lab.vms;
      runners = builtins.mapAttrs mkRunner lab.vms;
    in {
      nixosConfigurations = builtins.mapAttrs (name: c: {
        config = {
          networking.hostName = c.hostName;
          system.build.toplevel = toplevels.${name};
          microvm = c // { declaredRunner = runners.${name}; };
        };
      }) lab.vms;

      packages.${system} = runners;
    };
}
