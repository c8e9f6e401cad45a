ipvsadm -A -t 192.168.214.140:80 -s rr
ipvsadm -a -t 192.168.214.140:80 -r 192.168.214.145 -g
ipvsadm -a -t 192.168.214.140:80 -r 192.168.214.143 -g
ipvsadm -Ln
