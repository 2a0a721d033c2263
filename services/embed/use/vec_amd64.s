#include "textflag.h"

// AVX-512 helpers for the element-wise steps; n is a positive multiple of 16.

// func vadd(dst, src *float32, n int)
TEXT ·vadd(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $4, CX

addloop:
	VMOVUPS (DI), Z0
	VADDPS  (SI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	DECQ    CX
	JNZ     addloop
	VZEROUPPER
	RET

// func vreluadd(dst, src *float32, n int)
TEXT ·vreluadd(SB), NOSPLIT, $0-24
	MOVQ   dst+0(FP), DI
	MOVQ   src+8(FP), SI
	MOVQ   n+16(FP), CX
	SHRQ   $4, CX
	VPXORD Z1, Z1, Z1

reluloop:
	VMOVUPS (DI), Z0
	VMAXPS  Z1, Z0, Z0
	VADDPS  (SI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ    $64, DI
	ADDQ    $64, SI
	DECQ    CX
	JNZ     reluloop
	VZEROUPPER
	RET

// func vdequant(dst *float32, q *uint8, n int, scale, lo float32)
TEXT ·vdequant(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         q+8(FP), SI
	MOVQ         n+16(FP), CX
	SHRQ         $4, CX
	VBROADCASTSS scale+24(FP), Z2
	VBROADCASTSS lo+28(FP), Z3

dqloop:
	VPMOVZXBD   (SI), Z0
	VCVTDQ2PS   Z0, Z0
	VFMADD213PS Z3, Z2, Z0
	VMOVUPS     Z0, (DI)
	ADDQ        $16, SI
	ADDQ        $64, DI
	DECQ        CX
	JNZ         dqloop
	VZEROUPPER
	RET

// func vsum(x *float32, n int) float32
TEXT ·vsum(SB), NOSPLIT, $0-20
	MOVQ   x+0(FP), SI
	MOVQ   n+8(FP), CX
	SHRQ   $4, CX
	VPXORD Z0, Z0, Z0

sumloop:
	VADDPS (SI), Z0, Z0
	ADDQ   $64, SI
	DECQ   CX
	JNZ    sumloop
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+16(FP)
	RET

// func vcenter(x *float32, n int, mean float32) float32
// x[i] -= mean; returns the sum of the squares of the results.
TEXT ·vcenter(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         n+8(FP), CX
	SHRQ         $4, CX
	VBROADCASTSS mean+16(FP), Z2
	VPXORD       Z0, Z0, Z0

centerloop:
	VMOVUPS     (SI), Z1
	VSUBPS      Z2, Z1, Z1
	VMOVUPS     Z1, (SI)
	VFMADD231PS Z1, Z1, Z0
	ADDQ        $64, SI
	DECQ        CX
	JNZ         centerloop
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS        Y1, Y0, Y0
	VEXTRACTF128  $1, Y0, X1
	VADDPS        X1, X0, X0
	VHADDPS       X0, X0, X0
	VHADDPS       X0, X0, X0
	VZEROUPPER
	MOVSS         X0, ret+24(FP)
	RET

// func vaffine(x, gamma, beta *float32, n int, scale float32)
// x[i] = x[i]*scale*gamma[i] + beta[i]
TEXT ·vaffine(SB), NOSPLIT, $0-36
	MOVQ         x+0(FP), SI
	MOVQ         gamma+8(FP), DI
	MOVQ         beta+16(FP), DX
	MOVQ         n+24(FP), CX
	SHRQ         $4, CX
	VBROADCASTSS scale+32(FP), Z2

affloop:
	VMOVUPS     (SI), Z0
	VMULPS      Z2, Z0, Z0
	VMULPS      (DI), Z0, Z0
	VADDPS      (DX), Z0, Z0
	VMOVUPS     Z0, (SI)
	ADDQ        $64, SI
	ADDQ        $64, DI
	ADDQ        $64, DX
	DECQ        CX
	JNZ         affloop
	VZEROUPPER
	RET
