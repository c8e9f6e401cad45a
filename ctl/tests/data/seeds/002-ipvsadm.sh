ipvsadm-save > /etc/sysconfig/ipvsadm
ipvsadm --save > /etc/sysconfig/ipvsadm
ipvsadm -C
ipvsadm -A -t 192.168.200.188:80 -s rr
ipvsadm -a -t 192.168.200.188:80 -r 192.168.200.60:80 -g
ipvsadm -a -t 192.168.200.188:80 -r 192.168.200.70:80 -g
ipvsadm -ln
